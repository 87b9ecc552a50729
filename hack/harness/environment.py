"""The whole local environment: N clusters and one broker, recorded in a state directory.

State directory (``.dev/`` at the repository root, or ``$RABBITSYNC_STATE_DIR``) while up:
``<cluster>.kubeconfig`` for each cluster, ``broker.env`` (``AMQP_URL``, ``RABBITMQ_MANAGEMENT_URL``)
and ``state.json`` (what we started, so ``down`` stops exactly that). With ``RABBITSYNC_NODES=real``
each cluster also gets a real node (nodes.py) under ``nodes/<cluster>``. Other tools (operators-up,
the demo, outside checks) read these files: their names and meaning are a stable interface.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from harness import apt, beside, binaries, controlplane, image, nodes, operators, podrunner, rabbitmq
from harness.nodes import Node

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CLUSTERS = ("east", "west")
_DEPLOYMENT_FILES = ("services.json", "overlay-*.yaml", "podrunner-*.json")


def state_dir() -> Path:
    return Path(os.environ.get("RABBITSYNC_STATE_DIR") or REPO_ROOT / ".dev").resolve()


@dataclass(frozen=True)
class Environment:
    directory: Path
    clusters: dict[str, controlplane.Cluster]
    broker: rabbitmq.Broker
    nodes: dict[str, Node] = field(default_factory=dict)

    def alive(self) -> bool:
        return (
            all(c.alive() for c in self.clusters.values())
            and all(n.alive() for n in self.nodes.values())
            and rabbitmq.ready(self.broker)
        )

    def occupants(self) -> list[str]:
        """What runs on this environment besides its servers: a deployment that anyone else would meet.

        The demo's (or ``make operators-up``'s) operators reconcile every object in the clusters and hold
        connections to the broker: the tests run on servers of their own while any of these is here.
        """
        found = [f"`make operators-up` ({op.cluster})" for op in operators.running(self.directory)]
        # The overlays and the pod runners' records are written when a deployment starts, services.json
        # once it is up: a demo still rolling out counts too. `down` removes all three.
        deployed = [p.name for pattern in _DEPLOYMENT_FILES for p in sorted(self.directory.glob(pattern))]
        if deployed:
            found.append(f"the demo ({', '.join(deployed)})")
        if (self.directory / beside.FILE).exists():
            found.append(f"a kept chaos run ({beside.FILE})")
        return found


def _state_file(directory: Path) -> Path:
    return directory / "state.json"


def load(directory: Path | None = None) -> Environment | None:
    """The environment recorded in ``directory``, or None when nothing is recorded there."""
    directory = directory or state_dir()
    path = _state_file(directory)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return Environment(
        directory=directory,
        clusters={name: controlplane.Cluster.from_json(c) for name, c in data["clusters"].items()},
        broker=rabbitmq.Broker.from_json(data["broker"]),
        nodes={name: nodes.Node.from_json(n) for name, n in data.get("nodes", {}).items()},
    )


def _save(env: Environment) -> None:
    data = {
        "clusters": {name: c.to_json() for name, c in env.clusters.items()},
        "broker": env.broker.to_json(),
        "nodes": {name: n.to_json() for name, n in env.nodes.items()},
    }
    _state_file(env.directory).write_text(json.dumps(data, indent=2))
    (env.directory / "broker.env").write_text(
        f"AMQP_URL={env.broker.amqp_url}\nRABBITMQ_MANAGEMENT_URL={env.broker.management_url}\n"
    )


def up(
    directory: Path | None = None, names: tuple[str, ...] = DEFAULT_CLUSTERS, real_nodes: bool | None = None
) -> Environment:
    """Bring the environment up (or return the one already running there) once everything is ready.

    With a real node per cluster unless ``real_nodes`` is False (default: ``nodes.enabled()``).
    """
    real_nodes = nodes.enabled() if real_nodes is None else real_nodes
    directory = directory or state_dir()
    existing = load(directory)
    if existing is not None:
        same_pods = bool(existing.nodes) == real_nodes
        if existing.alive() and set(names) <= set(existing.clusters) and same_pods:
            log.info("environment in %s is already up", directory)
            return existing
        log.info("environment in %s is partly down (or runs pods the other way); restarting it", directory)
        down(directory)
    directory.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    bins = binaries.ensure_binaries()
    built = time.monotonic()
    # The broker and the clusters start in parallel: each waits on its own readiness probe.
    with ThreadPoolExecutor(max_workers=len(names) + 1) as pool:
        broker_future = pool.submit(rabbitmq.start, directory / "rabbitmq")
        cluster_futures = {
            name: pool.submit(
                controlplane.start, name, bins, directory / "clusters" / name, directory / f"{name}.kubeconfig"
            )
            for name in names
        }
        clusters = {name: f.result() for name, f in cluster_futures.items()}
        broker = broker_future.result()
    env = Environment(directory=directory, clusters=clusters, broker=broker)
    _save(env)
    if real_nodes:
        kubeconfigs = {name: Path(c.kubeconfig) for name, c in clusters.items()}
        env = Environment(directory, clusters, broker, start_nodes(directory / "nodes", kubeconfigs, broker))
        _save(env)
    log.info(
        "environment up in %s: binaries %.1fs, servers %.1fs (clusters: %s)",
        directory,
        built - started,
        time.monotonic() - built,
        ", ".join(names),
    )
    return env


def broker_ports(broker: rabbitmq.Broker) -> tuple[int, ...]:
    """The host ports a node must reach the broker on: AMQP and the management API."""
    return tuple(urllib.parse.urlsplit(url).port or 0 for url in (broker.amqp_url, broker.management_url))


def start_nodes(directory: Path, kubeconfigs: dict[str, Path], broker: rabbitmq.Broker) -> dict[str, nodes.Node]:
    """One real node per cluster (packages, binaries and images first, once), all Ready."""
    apt.ensure(nodes.PACKAGES)
    node_bins = binaries.ensure_node_binaries()
    images = image.ensure_images()
    with ThreadPoolExecutor(max_workers=len(kubeconfigs)) as pool:
        futures = {
            name: pool.submit(nodes.start, name, kubeconfig, directory / name, node_bins, images, broker_ports(broker))
            for name, kubeconfig in kubeconfigs.items()
        }
        wait(futures.values())
    started = {name: f.result() for name, f in futures.items() if f.exception() is None}
    failed = [e for f in futures.values() if (e := f.exception()) is not None]
    if failed:
        # All or nothing: a caller that gets an error has no node to stop.
        stop_nodes(started)
        raise failed[0]
    return started


def stop_nodes(running: dict[str, nodes.Node]) -> None:
    """Stop every node, in parallel; one that fails to stop never keeps the others running."""
    with ThreadPoolExecutor(max_workers=max(1, len(running))) as pool:
        futures = [pool.submit(nodes.stop, node) for node in running.values()]
    errors = [e for f in futures if (e := f.exception()) is not None]
    if errors:
        raise errors[0]


def down(directory: Path | None = None) -> None:
    """Stop everything recorded in ``directory`` and remove its data; a no-op when nothing is up."""
    directory = directory or state_dir()
    podrunner.stop_runners(directory)
    operators.down(directory)
    try:
        beside.stop(directory)
    finally:
        # Also when a member beside it failed to stop: the environment itself goes regardless.
        _down(directory)


def _down(directory: Path) -> None:
    env = load(directory)
    if env is None:
        return
    stop_nodes(env.nodes)
    for cluster in env.clusters.values():
        controlplane.stop(cluster)
    try:
        rabbitmq.stop(env.broker)
    except RuntimeError as e:
        log.warning("broker did not stop cleanly: %s", e)
    for name in env.clusters:
        (directory / f"{name}.kubeconfig").unlink(missing_ok=True)
    (directory / "broker.env").unlink(missing_ok=True)
    (directory / "services.json").unlink(missing_ok=True)
    _state_file(directory).unlink()
    shutil.rmtree(directory / "clusters", ignore_errors=True)
    shutil.rmtree(directory / "rabbitmq", ignore_errors=True)
    shutil.rmtree(directory / "pods", ignore_errors=True)
    shutil.rmtree(directory / "nodes", ignore_errors=True)
    for leftover in [*directory.glob("overlay-*.yaml"), *directory.glob("services-*-forward.log")]:
        leftover.unlink()
