"""Injecting each fault kind into the running lab, and waiting until the harm is done, not the repair.

An injector returns once the fault itself is over (the broker is back, the killed process was
restarted by the pod runner, the database accepts connections): whether the product recovered is for
the final accounting to say. The broker outage is timed, so the accounting can check that the REST
APIs accepted writes all through it.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from chaos import lab as lab_
from chaos import poison, readiness
from chaos.lab import APP_NAMESPACE, SYSTEM_NAMESPACE, Lab
from chaos.schedule import Fault, Kind
from harness import processes, rabbitmq, rabbitmq_cluster

log = logging.getLogger(__name__)

BROKER_DOWN_S = 15.0
NODE_DOWN_S = 15.0
BROKER_SHUTDOWN_S = 10.0
"""A graceful stop's budget before the harness signals the node (a loaded 2-core machine needs >30 s otherwise)."""
DATABASE_DOWN_S = 20.0
"""Longer than the sample retry schedule (1+2+4+8 s): an outage that outlasts the retries."""
KILLED_SERVICE = {"east": "restaurant-menu", "west": "restaurant"}
"""Whose sidecar and web process a kill hits in each cluster (the relay of a service with writes)."""


@dataclass
class Record:
    """What the injectors did, for the report and the accounting."""

    done: list[tuple[float, Fault, str]] = field(default_factory=list)
    broker_outages: list[tuple[float, float]] = field(default_factory=list)
    not_ready: dict[str, float] = field(default_factory=dict)
    """Service pods a kubelet would have called NotReady during a broker outage: samples (about 1/s)."""
    poison: dict[str, poison.Poison] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    """Poison the broker itself refused (message id -> error): it never reached a consumer."""


def inject(lab: Lab, fault: Fault, record: Record) -> str:
    """Run one fault; returns a line saying what was done."""
    started = time.monotonic()
    note = INJECTORS[fault.kind](lab, fault, record)
    record.done.append((started, fault, note))
    log.info("fault %s on %s: %s (%.1fs)", fault.kind.value, fault.target, note, time.monotonic() - started)
    return note


def _close_connections(lab: Lab, _fault: Fault, _record: Record) -> str:
    url = lab.broker.management_url
    connections = rabbitmq.management_get(url, "/api/connections?columns=name")
    assert isinstance(connections, list)
    for connection in connections:
        name = urllib.parse.quote(str(connection["name"]), safe="")
        try:
            rabbitmq.management_request(url, "DELETE", f"/api/connections/{name}")
        except OSError as e:
            log.warning("closing connection %s: %s", connection["name"], e)
    return f"closed {len(connections)} connections"


def _restart_broker(lab: Lab, _fault: Fault, record: Record) -> str:
    """Every node stopped, then every node started: an outage of the whole broker."""
    cluster = lab.broker.cluster
    watch = readiness.Watch(lab.directory, lab.kubeconfigs, APP_NAMESPACE)
    watch.start()
    began = time.monotonic()
    try:
        rabbitmq_cluster.stop(cluster, shutdown_timeout=BROKER_SHUTDOWN_S)
        time.sleep(BROKER_DOWN_S)
        rabbitmq_cluster.relaunch(cluster)
    finally:
        ended = time.monotonic()
        watch.stop()
        record.broker_outages.append((began, ended))
        for key, samples in watch.not_ready.items():
            record.not_ready[key] = record.not_ready.get(key, 0.0) + samples
    return f"{len(cluster.nodes)} nodes down {ended - began:.1f}s"


def _lose_node(lab: Lab, _fault: Fault, _record: Record) -> str:
    """SIGKILL of the node most clients are connected to; back after a while, and rejoined."""
    cluster = lab.broker.cluster
    connections = rabbitmq.management_get(lab.broker.management_url, "/api/connections?columns=node")
    assert isinstance(connections, list)
    per_node = Counter(str(c.get("node")) for c in connections)
    victim = max(cluster.nodes, key=lambda n: per_node.get(n.node, 0))
    rabbitmq_cluster.kill(victim)
    time.sleep(NODE_DOWN_S)
    rabbitmq_cluster.restart(victim)
    names = sorted(n.node for n in cluster.nodes)
    processes.wait_until(lambda: cluster.running() == names, 120, f"{victim.node} back in the cluster")
    return f"SIGKILL {victim.node} ({per_node.get(victim.node, 0)} of {len(connections)} connections), rejoined"


def _kill_container(lab: Lab, cluster: str, namespace: str, deployment: str, container: str) -> str:
    before = lab_.pod(lab, cluster, namespace, deployment)["containers"][container]["pid"]
    os.kill(int(before), signal.SIGKILL)

    def restarted() -> bool:
        entry = lab_.pod(lab, cluster, namespace, deployment).get("containers", {}).get(container, {})
        return entry.get("pid") not in (None, before)

    processes.wait_until(restarted, 90, f"{cluster} {deployment}/{container} restarted by the pod runner")
    return f"SIGKILL {cluster} {deployment}/{container} pid {before}"


def _kill_sidecar(lab: Lab, fault: Fault, _record: Record) -> str:
    return _kill_container(lab, fault.target, APP_NAMESPACE, KILLED_SERVICE[fault.target], "rabbitsync-sidecar")


def _kill_relay(lab: Lab, fault: Fault, _record: Record) -> str:
    return _kill_container(lab, fault.target, APP_NAMESPACE, KILLED_SERVICE[fault.target], "app")


def _kill_operator(lab: Lab, fault: Fault, _record: Record) -> str:
    [deployment] = [name for name in lab_.pod_names(lab, fault.target, SYSTEM_NAMESPACE)]
    [container] = list(lab_.pod(lab, fault.target, SYSTEM_NAMESPACE, deployment)["containers"])
    return _kill_container(lab, fault.target, SYSTEM_NAMESPACE, deployment, container)


def _restart_apiserver(lab: Lab, fault: Fault, _record: Record) -> str:
    began = time.monotonic()
    lab_.restart_apiserver(lab, fault.target)
    return f"{fault.target} kube-apiserver restarted in {time.monotonic() - began:.1f}s"


def _database_outage(lab: Lab, fault: Fault, _record: Record) -> str:
    began = time.monotonic()
    lab_.restart_database(lab, DATABASE_DOWN_S)
    cluster, service = lab_.POSTGRES_PLACE
    return f"{cluster}/{service} PostgreSQL down {time.monotonic() - began:.1f}s"


def _publish_poison(lab: Lab, _fault: Fault, record: Record) -> str:
    uri = poison.publisher_uri(lab.kubeconfigs[poison.PUBLISHER[0]])
    notes = []
    for made in poison.batch():
        # Recorded before publishing: a publish whose confirm was lost may still have reached a queue.
        record.poison[made.message_id] = made
        try:
            poison.publish(uri, [made])
            notes.append(made.what)
        except Exception as e:  # the broker refusing one is a finding, the others still go out
            record.refused[made.message_id] = f"{type(e).__name__}: {e}"
            notes.append(f"{made.what} REFUSED by the broker ({record.refused[made.message_id]})")
    return "published " + ", ".join(notes)


INJECTORS: dict[Kind, Callable[[Lab, Fault, Record], str]] = {
    Kind.CONNECTIONS_CLOSED: _close_connections,
    Kind.BROKER_RESTART: _restart_broker,
    Kind.NODE_LOST: _lose_node,
    Kind.SIDECAR_KILLED: _kill_sidecar,
    Kind.RELAY_KILLED: _kill_relay,
    Kind.OPERATOR_KILLED: _kill_operator,
    Kind.APISERVER_RESTART: _restart_apiserver,
    Kind.DATABASE_OUTAGE: _database_outage,
    Kind.POISON: _publish_poison,
}
