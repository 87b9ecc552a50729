"""A pod runner killed with SIGKILL (a killed test session) leaves no pod behind for the next run.

Its containers run in sessions of their own, so they outlive it; ``stop_runners`` finds them in the
runner's last ``pods.json`` and stops them. Seen in CI: a leaked gunicorn held a pod IP's port 8000
and thirteen e2e tests of the next run errored.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from kubernetes import client

from harness import podrunner, polling, processes

IP_PREFIX = "127.0.9"


def _deployment(name: str) -> dict[str, object]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": "unused", "command": ["sleep", "600"]}]},
            },
        },
    }


def _container_record(state: Path, namespace: str) -> processes.ProcessRecord | None:
    pods = podrunner.status(state, "east", namespace)
    containers = [c for pod in pods.values() for c in pod["containers"].values() if c.get("pid")]
    if not containers:
        return None
    [c] = containers
    return processes.ProcessRecord(name="main", pid=c["pid"], start_ticks=c["start_ticks"], log="")


def test_a_sigkilled_runner_s_containers_are_stopped_with_it(clusters, namespace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    east = clusters["east"]
    client.AppsV1Api(east.api).create_namespaced_deployment(namespace, _deployment("sleeper"))
    runner = podrunner.start_runner(tmp_path, "east", east.kubeconfig, (namespace,), IP_PREFIX)
    try:
        container = polling.eventually(lambda: _container_record(tmp_path, namespace), 60, "the pod's container")
        assert processes.alive(container)
        os.killpg(runner.pid, signal.SIGKILL)
        polling.eventually(lambda: not processes.alive(runner), 10, "the runner gone")
        assert processes.alive(container), "the container outlives its killed runner"
    finally:
        podrunner.stop_runners(tmp_path)
    assert not processes.alive(container), json.dumps(podrunner.status(tmp_path, "east", namespace))
