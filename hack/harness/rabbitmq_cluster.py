"""A RabbitMQ cluster on loopback, as production runs quorum queues: three nodes, one Erlang cookie.

Each node is an ordinary harness node (``rabbitmq.prepare``/``launch``) with ports and a node name of
its own; all share one epmd port (so they find each other) and one cookie. The first node starts
alone, the others ``join_cluster`` it. Fault helpers kill one node as a machine failure would (SIGKILL
of its beam, nothing else) and bring it back with its data, so it rejoins. The single node stays the
harness's default: a cluster costs three boots.
"""

from __future__ import annotations

import logging
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from harness import rabbitmq, rabbitmq_teardown
from harness.rabbitmq_config import allocate_ports, node_name, own_ports

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cluster:
    nodes: tuple[rabbitmq.Broker, ...]

    @property
    def amqp_urls(self) -> list[str]:
        return [node.amqp_url for node in self.nodes]

    def running(self) -> list[str]:
        """Names of the running members, as the first reachable node sees them."""
        for node in self.nodes:
            if rabbitmq.ready(node):
                status = rabbitmq.management_get(node.management_url, "/api/nodes")
                assert isinstance(status, list)
                return sorted(str(n["name"]) for n in status if n.get("running"))
        return []


def start(base: Path, size: int = 3, options: rabbitmq.Options | None = None) -> Cluster:
    """``size`` nodes under ``base/node-N``, clustered; a start never depends on how the last run ended."""
    options = options or rabbitmq.Options.from_env()
    cookie = secrets.token_hex(20)
    [epmd] = allocate_ports(1)
    ports = own_ports(tls=options.tls, epmd=epmd)
    first = rabbitmq.prepare(base / "node-0", ports, node_name(ports), options, cookie)
    rabbitmq.launch(first)
    return grow(first, base, size, options)


def grow(first: rabbitmq.Broker, base: Path, size: int = 3, options: rabbitmq.Options | None = None) -> Cluster:
    """``first`` (a running node of our own) joined by new members under ``base/node-N`` up to ``size`` nodes.

    The members take the first node's cookie and epmd, so a broker already in use (the environment's)
    becomes a cluster without a restart; queues declared afterwards get a member on every node.
    """
    options = options or rabbitmq.Options.from_env()
    if first.home is None or first.ports is None:
        raise ValueError(f"{first.node} is not a node of our own: no cookie or ports to share")
    cookie = (Path(first.home) / ".erlang.cookie").read_text()
    nodes = [first]
    for index in range(1, size):
        ports = own_ports(tls=options.tls, epmd=first.ports.epmd)
        nodes.append(rabbitmq.prepare(base / f"node-{index}", ports, node_name(ports), options, cookie))
    # The others boot in parallel (a boot is mostly waiting), then join one at a time: joins reset a
    # node and serialise on the cluster's metadata store anyway.
    with ThreadPoolExecutor(max_workers=size - 1 or 1) as pool:
        list(pool.map(rabbitmq.launch, nodes[1:]))
    for node in nodes[1:]:
        rabbitmq.ctl(node, "stop_app", timeout=120)
        rabbitmq.ctl(node, "join_cluster", first.node, timeout=120)
        rabbitmq.ctl(node, "start_app", timeout=120)
    return Cluster(tuple(nodes))


def kill(node: rabbitmq.Broker) -> None:
    """Lose ``node`` at once: SIGKILL of its processes; the shared epmd stays for the others."""
    assert node.ports is not None
    rabbitmq_teardown.kill_node(node.files.pid_file, node.ports.epmd, rabbitmq_teardown.CRASH, keep_epmd=True)


def restart(node: rabbitmq.Broker) -> None:
    """Bring a killed or stopped member back with its data: it rejoins the cluster by itself."""
    rabbitmq.launch(node)


BOOT_ATTEMPTS = 3
"""Starts of a member that exits while its cluster boots, before the relaunch gives up on it."""


def relaunch(cluster: Cluster) -> None:
    """Start every member of a stopped cluster at once: each waits at boot for the others it knew.

    RabbitMQ 3.10 can lose a race there: a member that compares feature flags with a peer still
    booting exits (``incompatible_feature_flags`` ... ``badmap``). It is started again at once, while
    its peers still wait for it. Started only once they were up, it deadlocked the 100,000-event
    soak: the peers gave up waiting for its tables after 300 s and exited, then it waited for theirs,
    and the broker stayed down until they were started by hand.
    """
    with ThreadPoolExecutor(max_workers=len(cluster.nodes)) as pool:
        list(pool.map(_launch, cluster.nodes))


def _launch(node: rabbitmq.Broker) -> None:
    for attempt in range(1, BOOT_ATTEMPTS + 1):
        try:
            rabbitmq.launch(node)
            return
        except rabbitmq.NodeDiedAtBoot as e:
            if attempt == BOOT_ATTEMPTS:
                raise
            log.warning("%s died while the cluster booted (%s): starting it again", node.node, e)


def stop(cluster: Cluster, shutdown_timeout: float = rabbitmq.SHUTDOWN_TIMEOUT) -> None:
    """Stop every member; the first last, since the epmd the members share was started by it."""
    for node in reversed(cluster.nodes):
        rabbitmq.stop(node, shutdown_timeout=shutdown_timeout)
