"""The deployment a fault run works on: ``make demo``'s two clusters, plus one service on PostgreSQL.

The example services keep their data in SQLite inside the pod, and a file has no outage. So that a
database outage can be real, one service of one cluster (``POSTGRES_PLACE``) is moved onto a harness
PostgreSQL server before any write: its Deployment gets ``DATABASE_URL`` in every container (app,
migrate and the injected sidecar, which copies the app's environment), and the pod runner replaces
the pod, as a rollout would. Everything else is the demo as written: the manifests, the operator
in-cluster, the sidecars it injects, the pod runner as kubelet.

The run has a state directory of its own and its own broker node (``RABBITSYNC_BROKER_PRIVATE``),
because it restarts that broker: it must never be a broker somebody else uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness import demo, environment, operators, podrunner, postgres, processes

IP_PREFIXES = {"east": "127.0.5", "west": "127.0.6"}
"""Apart from the demo's (127.0.1/2) and the e2e suite's (127.0.3/4): a run can go beside them."""
POSTGRES_PLACE = ("west", "order")
"""The service moved onto PostgreSQL: ``order`` subscribes to every type, so an outage there hurts most."""
FLAKY_PLACE = ("east", "restaurant-menu")
"""The service whose sidecar's handlers fail a share of the time (``chaos.flaky``)."""
FLAKY_RATE = 0.05
"""Low enough that five failures in a row (the sample maxAttempts) stay improbable: about 3 in 10 million."""
FLAKY_ENV = {
    "DJANGO_SETTINGS_MODULE": "chaos.flaky_settings",
    "CHAOS_BASE_SETTINGS": "restaurant_menu.settings",
    "CHAOS_HANDLER_FAILURE_RATE": str(FLAKY_RATE),
    # As the pod runner's image sets it, plus the suite's own modules.
    "PYTHONPATH": "/app/operator:/app/services:/app/hack",
}
SIDECAR = "rabbitsync-sidecar"
SYSTEM_NAMESPACE = operators.NAMESPACE
APP_NAMESPACE = demo.APP_NAMESPACE


@dataclass
class Lab:
    env: environment.Environment
    urls: dict[str, dict[str, str]]
    database: postgres.Server
    """Mutable: a database outage replaces its process record."""

    @property
    def directory(self) -> Path:
        return self.env.directory

    @property
    def kubeconfigs(self) -> dict[str, Path]:
        return {name: Path(c.kubeconfig) for name, c in self.env.clusters.items()}


def up() -> Lab:
    """The environment, the deployment, the PostgreSQL move and the flaky handlers, all ready for writes."""
    os.environ["RABBITSYNC_BROKER_PRIVATE"] = "1"
    env = environment.up()
    if not env.broker.owned:
        raise RuntimeError(f"the broker at {env.broker.amqp_url} is not ours: a fault run restarts it")
    operators.down(env.directory)
    kubeconfigs = {name: Path(c.kubeconfig) for name, c in env.clusters.items()}
    demo.deploy(env.directory, kubeconfigs, env.broker.amqp_url, env.broker.management_url, IP_PREFIXES)
    cluster, service = POSTGRES_PLACE
    database = postgres.start(f"{cluster}_{service}".replace("-", "_"))
    lab = Lab(env=env, urls={}, database=database)
    _roll_out(lab, POSTGRES_PLACE, {"DATABASE_URL": database.url})
    _roll_out(lab, FLAKY_PLACE, FLAKY_ENV, only=SIDECAR)
    lab.urls = {name: demo.service_urls(env.directory, name) for name in kubeconfigs}
    return lab


def _roll_out(lab: Lab, place: tuple[str, str], env: dict[str, str], only: str | None = None) -> None:
    """Change a service's pod template and wait until the pod runner replaced the pod and it is ready."""
    cluster, service = place
    before = pod(lab, cluster, APP_NAMESPACE, service)["pod"]
    _set_env(lab.kubeconfigs[cluster], service, env, only)
    processes.wait_until(
        lambda: pod(lab, cluster, APP_NAMESPACE, service).get("pod") not in (None, before),
        120,
        f"{cluster}/{service} replaced with {', '.join(env)}",
    )
    wait_ready(lab, cluster, service, 180)


def pod(lab: Lab, cluster: str, namespace: str, deployment: str) -> dict[str, Any]:
    """The pod runner's record of a Deployment's pod: name, IP, ports, containers with their pids."""
    found: dict[str, Any] = podrunner.status(lab.directory, cluster, namespace).get(deployment, {})
    return found


def wait_ready(lab: Lab, cluster: str, service: str, timeout: float) -> None:
    """Until the service's app answers /healthz and its sidecar /readyz (the demo's own readiness)."""

    def ready() -> bool:
        ip = pod(lab, cluster, APP_NAMESPACE, service).get("ip")
        app = demo.service_urls(lab.directory, cluster).get(service)
        return bool(ip and app) and demo.reachable(f"{app}/healthz") and demo.reachable(f"http://{ip}:8088/readyz")

    processes.wait_until(ready, timeout, f"{cluster}/{service} ready")


def _set_env(kubeconfig: Path, service: str, env: dict[str, str], only: str | None = None) -> None:
    """Add ``env`` to every container of the service's pod template (``only``: to that container alone)."""
    deployment = json.loads(
        operators.kubectl(kubeconfig, "get", "deployment", service, "-n", APP_NAMESPACE, "-o", "json")
    )
    spec = deployment["spec"]["template"]["spec"]
    var = [{"name": name, "value": value} for name, value in env.items()]
    patch: dict[str, Any] = {"spec": {"template": {"spec": {}}}}
    for key in ("initContainers", "containers"):
        named = [{"name": c["name"], "env": var} for c in spec.get(key, []) if only in (None, c["name"])]
        if named:
            patch["spec"]["template"]["spec"][key] = named
    operators.kubectl(kubeconfig, "patch", "deployment", service, "-n", APP_NAMESPACE, "-p", json.dumps(patch))


def restart_database(lab: Lab, down_for: float) -> None:
    """Stop the service's PostgreSQL (fast shutdown: clients are cut off), wait, start it on its data again."""
    server = lab.database
    argv = Path(f"/proc/{server.record.pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    bindir = postgres.find_bindir()
    assert bindir is not None
    pg_ctl = [str(bindir / "pg_ctl"), "stop", "-D", str(server.base / "data"), "-m", "fast", "-t", "20"]
    owner = ["runuser", "-u", postgres.OS_USER, "--"] if os.geteuid() == 0 else []
    subprocess.run([*owner, *pg_ctl], capture_output=True, cwd=server.base, check=False)
    processes.stop(server.record)
    time.sleep(down_for)
    record = processes.spawn("postgres", [a.decode() for a in argv], Path(server.record.log), cwd=server.base)
    lab.database = replace(server, record=record)
    processes.wait_until(lambda: processes.port_open(server.port), 60, "postgres after the outage", server.record.log)


def restart_apiserver(lab: Lab, cluster: str) -> None:
    """Stop one cluster's kube-apiserver (SIGTERM, as a rollout would) and start it with the same flags.

    The state file is updated with the new process, so ``make dev-down`` stops that one.
    """
    handle = lab.env.clusters[cluster]
    old = next(p for p in handle.processes if p.name == "kube-apiserver")
    argv = [a.decode() for a in Path(f"/proc/{old.pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")]
    processes.stop(old)
    new = processes.spawn("kube-apiserver", argv, Path(old.log))
    renewed = replace(handle, processes=tuple(new if p == old else p for p in handle.processes))
    lab.env = replace(lab.env, clusters={**lab.env.clusters, cluster: renewed})
    state = lab.directory / "state.json"
    data = json.loads(state.read_text())
    data["clusters"][cluster] = renewed.to_json()
    state.write_text(json.dumps(data, indent=2))
    processes.wait_until(
        lambda: _answers(lab.kubeconfigs[cluster]), 120, f"{cluster} kube-apiserver after restart", old.log
    )


def _answers(kubeconfig: Path) -> bool:
    try:
        operators.kubectl(kubeconfig, "get", "--raw", "/readyz", timeout=10)
    except (RuntimeError, subprocess.TimeoutExpired):
        return False
    return True


def down(lab: Lab | None) -> None:
    """Stop everything the run started; each step runs even when an earlier one failed."""
    try:
        environment.down()
    finally:
        if lab is not None:
            postgres.stop(lab.database)


def pod_names(lab: Lab, cluster: str, namespace: str) -> list[str]:
    return sorted(podrunner.status(lab.directory, cluster, namespace))
