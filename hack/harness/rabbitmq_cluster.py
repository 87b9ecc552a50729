"""A RabbitMQ cluster on loopback, as production runs quorum queues: three nodes, one Erlang cookie.

Each node is an ordinary harness node (``rabbitmq.prepare``/``launch``) with ports and a node name of
its own; all share one epmd port (so they find each other) and one cookie. The first node starts
alone, the others ``join_cluster`` it. Fault helpers kill one node as a machine failure would (SIGKILL
of its beam, nothing else) and bring it back with its data, so it rejoins. The single node stays the
harness's default: a cluster costs three boots.
"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from harness import rabbitmq, rabbitmq_teardown
from harness.rabbitmq_config import allocate_ports, node_name, own_ports


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
    nodes = []
    for index in range(size):
        ports = own_ports(tls=options.tls, epmd=epmd)
        nodes.append(rabbitmq.prepare(base / f"node-{index}", ports, node_name(ports), options, cookie))
    rabbitmq.launch(nodes[0])
    # The others boot in parallel (a boot is mostly waiting), then join one at a time: joins reset a
    # node and serialise on the cluster's metadata store anyway.
    with ThreadPoolExecutor(max_workers=size - 1 or 1) as pool:
        list(pool.map(rabbitmq.launch, nodes[1:]))
    for node in nodes[1:]:
        rabbitmq.ctl(node, "stop_app", timeout=120)
        rabbitmq.ctl(node, "join_cluster", nodes[0].node, timeout=120)
        rabbitmq.ctl(node, "start_app", timeout=120)
    return Cluster(tuple(nodes))


def kill(node: rabbitmq.Broker) -> None:
    """Lose ``node`` at once: SIGKILL of its processes; the shared epmd stays for the others."""
    assert node.ports is not None
    rabbitmq_teardown.kill_node(node.files.pid_file, node.ports.epmd, rabbitmq_teardown.CRASH, keep_epmd=True)


def restart(node: rabbitmq.Broker) -> None:
    """Bring a killed or stopped member back with its data: it rejoins the cluster by itself."""
    rabbitmq.launch(node)


def stop(cluster: Cluster) -> None:
    """Stop every member; the first last, since the epmd the members share was started by it."""
    for node in reversed(cluster.nodes):
        rabbitmq.stop(node)
