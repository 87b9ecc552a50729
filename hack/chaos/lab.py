"""The deployment a fault run works on: ``make demo``'s two clusters, plus one service on PostgreSQL.

The example services keep their data in SQLite inside the pod, and a file has no outage. So that a
database outage can be real, one service of one cluster (``POSTGRES_PLACE``) is moved onto a harness
PostgreSQL server before any write: its Deployment gets ``DATABASE_URL`` in every container (app,
migrate and the injected sidecar, which copies the app's environment), and the pod runner replaces
the pod, as a rollout would. Everything else is the demo as written: the manifests, the operator
in-cluster, the sidecars it injects, the pod runner as kubelet.

The broker is a three-node RabbitMQ cluster, as production runs quorum queues: the environment's own
node (``RABBITSYNC_BROKER_PRIVATE``, never one somebody else uses, since the run restarts it) is
joined by two more before anything is deployed, so every queue gets a member on each node. The
SyncBrokers point at ``chaos.balancer``, which stands in for the Service in front of the cluster: a
client whose node is lost reconnects through it to a live one. The whole run uses the cluster (one
lab costs minutes; a second, single-node phase would double that), while ``make demo`` and the test
suites keep the single node.

What the run starts beyond the environment (the two members, the balancer, PostgreSQL) is recorded
in the state directory (``harness.beside``), so ``make dev-down`` and the next run stop what a
``--keep`` run left.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness import beside, demo, environment, operators, podrunner, postgres, processes, rabbitmq_cluster

log = logging.getLogger(__name__)

_SUBNET = int(os.environ.get("CHAOS_SUBNET", "5"))
IP_PREFIXES = {"east": f"127.0.{_SUBNET}", "west": f"127.0.{_SUBNET + 1}"}
"""Apart from the demo's (127.0.1/2) and the e2e suite's (127.0.3/4): a run can go beside them.
``CHAOS_SUBNET=7`` (with a state directory of its own) runs a second fault run beside the first."""
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


CLUSTER_SIZE = 3


@dataclass(frozen=True)
class Broker:
    """The cluster and the one address in front of it."""

    cluster: rabbitmq_cluster.Cluster
    balancer: processes.ProcessRecord
    amqp_url: str
    management_url: str


@dataclass
class Lab:
    env: environment.Environment
    urls: dict[str, dict[str, str]]
    broker: Broker
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
    # The pod runner, whatever RABBITSYNC_NODES says: the faults kill pods' processes by pid.
    env = environment.up(real_nodes=False)
    if not env.broker.owned:
        raise RuntimeError(f"the broker at {env.broker.amqp_url} is not ours: a fault run restarts it")
    operators.down(env.directory)
    beside.stop(env.directory)
    broker = _cluster(env)
    database = postgres.start("_".join(POSTGRES_PLACE).replace("-", "_"))
    _record_beside(env.directory, broker, database)
    kubeconfigs = {name: Path(c.kubeconfig) for name, c in env.clusters.items()}
    demo.deploy(env.directory, kubeconfigs, broker.amqp_url, broker.management_url, IP_PREFIXES)
    lab = Lab(env=env, urls={}, broker=broker, database=database)
    # Two services in two clusters: their pods are replaced side by side.
    with ThreadPoolExecutor(max_workers=2) as pool:
        rollouts = [
            pool.submit(_roll_out, lab, POSTGRES_PLACE, {"DATABASE_URL": database.url}),
            pool.submit(_roll_out, lab, FLAKY_PLACE, FLAKY_ENV, SIDECAR),
        ]
    for rollout in rollouts:
        rollout.result()
    lab.urls = {name: demo.service_urls(env.directory, name) for name in kubeconfigs}
    return lab


def _cluster(env: environment.Environment) -> Broker:
    """The environment's node grown to ``CLUSTER_SIZE`` members, and the balancer in front of them."""
    cluster = rabbitmq_cluster.grow(env.broker, env.directory / "cluster", CLUSTER_SIZE)
    amqp, management = processes.free_port(), processes.free_port()
    ports = [node.ports for node in cluster.nodes if node.ports is not None]
    rules = [
        f"127.0.0.1:{amqp}=" + ",".join(f"127.0.0.1:{p.amqp}" for p in ports),
        f"127.0.0.1:{management}=" + ",".join(f"127.0.0.1:{p.management}" for p in ports),
    ]
    balancer = processes.spawn(
        "balancer", [sys.executable, "-m", "chaos.balancer", *rules], env.directory / "balancer.log"
    )
    processes.wait_until(lambda: processes.port_open(management), 30, "the balancer", str(balancer.log))
    return Broker(
        cluster=cluster,
        balancer=balancer,
        amqp_url=f"amqp://guest:guest@127.0.0.1:{amqp}/",
        management_url=f"http://guest:guest@127.0.0.1:{management}",
    )


def _record_beside(directory: Path, broker: Broker, database: postgres.Server) -> None:
    beside.record(directory, list(broker.cluster.nodes[1:]), [broker.balancer], [database])


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
    _record_beside(lab.directory, lab.broker, lab.database)
    processes.wait_until(lambda: processes.port_open(server.port), 60, "postgres after the outage", server.record.log)


APISERVER_STARTS = 3
"""Starts of a restarted kube-apiserver: on a loaded machine a post-start hook may time out against etcd and
exit the process, and a kubelet would start its static pod again."""


def restart_apiserver(lab: Lab, cluster: str) -> None:
    """Stop one cluster's kube-apiserver (SIGTERM, as a rollout would) and start it with the same flags.

    The state file is updated with the new process, so ``make dev-down`` stops that one.
    """
    handle = lab.env.clusters[cluster]
    old = next(p for p in handle.processes if p.name == "kube-apiserver")
    argv = [a.decode() for a in Path(f"/proc/{old.pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")]
    processes.stop(old)
    current = old
    for start in range(1, APISERVER_STARTS + 1):
        new = processes.spawn("kube-apiserver", argv, Path(old.log))
        _replace_process(lab, cluster, current, new)
        current = new
        try:
            processes.wait_until(
                functools.partial(_answers, lab.kubeconfigs[cluster], new),
                120,
                f"{cluster} kube-apiserver after restart",
                old.log,
            )
            return
        except (TimeoutError, AssertionError, RuntimeError):
            if start == APISERVER_STARTS or processes.alive(new):
                raise
            log.warning("%s kube-apiserver exited while starting; starting it again", cluster)


def _replace_process(lab: Lab, cluster: str, old: processes.ProcessRecord, new: processes.ProcessRecord) -> None:
    handle = lab.env.clusters[cluster]
    renewed = replace(handle, processes=tuple(new if p == old else p for p in handle.processes))
    lab.env = replace(lab.env, clusters={**lab.env.clusters, cluster: renewed})
    state = lab.directory / "state.json"
    data = json.loads(state.read_text())
    data["clusters"][cluster] = renewed.to_json()
    state.write_text(json.dumps(data, indent=2))


def _answers(kubeconfig: Path, server: processes.ProcessRecord) -> bool:
    if not processes.alive(server):
        raise RuntimeError("kube-apiserver exited")
    try:
        operators.kubectl(kubeconfig, "get", "--raw", "/readyz", timeout=10)
    except (RuntimeError, subprocess.TimeoutExpired):
        return False
    return True


def down(lab: Lab | None) -> None:
    """Stop everything the run started (``environment.down`` stops what ``beside`` recorded too)."""
    environment.down(lab.directory if lab is not None else None)


def pod_names(lab: Lab, cluster: str, namespace: str) -> list[str]:
    return sorted(podrunner.status(lab.directory, cluster, namespace))
