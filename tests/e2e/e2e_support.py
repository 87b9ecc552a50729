"""What the e2e tests share: the deployment handle and a polling assertion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import demo, podrunner, polling
from harness.nodes import Node


@dataclass
class Deployment:
    directory: Path
    kubeconfigs: dict[str, Path]
    urls: dict[str, dict[str, str]]
    local: bool
    vhost: str = "/"
    """The broker vhost the deployment's SyncBrokers point at."""
    nodes: dict[str, Node] = field(default_factory=dict)
    """The real nodes (the default); empty when the pod runner (``RABBITSYNC_NODES=podrunner``) runs the pods."""

    def url(self, cluster: str, service: str, path: str) -> str:
        return self.urls[cluster][service] + path

    def kubectl(self, cluster: str, *args: str) -> str:
        return demo.operators.kubectl(self.kubeconfigs[cluster], *args)


def eventually(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; a service restarting counts as "not yet"."""
    return polling.eventually(check, timeout, what, interval=0.3, tolerate=(OSError, ValueError))


def pods_ready(dep: Deployment, cluster: str) -> dict[str, bool]:
    """Each service's pod Ready as the pod runner's kubelet-like probes say (pod-runner deployments)."""
    pods = podrunner.status(dep.directory, cluster, demo.APP_NAMESPACE)
    return {service: bool(pods.get(service, {}).get("ready")) for service in demo.SERVICES}
