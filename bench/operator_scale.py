"""Operator at scale: N SyncSubscriptions in one namespace to Ready, drift repair, RSS and idle CPU.

One kube-apiserver, one broker (``RABBITSYNC_BROKER_PRIVATE=1`` for a node of one's own), one operator
process as ``make operators-up`` runs it, at the production resync interval (30 s). The subscriptions
are spread over ten services (ten Deployments, the sidecar injected into each), created all at once;
a stand-in for their sidecars (``StandInSidecars``) consumes each subscription's queue as soon as it
exists, since Ready means "events will be consumed". The figures are:

- ``ready_s``: from the first create until every subscription's ``Ready`` is ``True``;
- ``ready_but_a_condition_not_true``: after the quiet window, how many Ready subscriptions have
  another condition not ``True`` (a status contradicting itself: 0 expected);
- ``drift_repair_s``: from deleting one subscription's DLQ and one of its bindings on the broker until
  both are back (the drift sweep's doing: each subscription's own resync is 10 minutes);
- ``operator_rss_mb``: the operator's resident memory once converged;
- ``idle_cpu_percent``: its CPU over a quiet window after convergence (one core = 100 %);
- ``idle_reconciles``: reconciles the operator ran in that window, by trigger (its metrics): what a
  converged operator costs the broker besides the one listing per broker per sweep;
- ``operator_connections``: AMQP connections the operator holds on the broker (one per broker);
- ``converging_cpu_percent``: until all are Ready, each process's CPU in percent of one core (the
  broker node, the control plane's processes, the operator, this bench), and how busy all cores were.

    RABBITSYNC_BROKER_PRIVATE=1 PYTHONPATH=hack .venv/bin/python bench/operator_scale.py [--subscriptions 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import pika
import procstat
from kubernetes import client, config

from harness import binaries, controlplane, operators, rabbitmq, rabbitmq_teardown
from rabbitsync.topology import naming

NAMESPACE = "bench"
GROUP, VERSION = "rabbitsync.io", "v1alpha1"
EXCHANGE = "bench.events"
SERVICES = 10


def _deployment(name: str) -> dict[str, Any]:
    labels = {"app": name}
    container = {"name": "app", "image": "bench:1", "command": ["sleep", "infinity"]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "annotations": {"rabbitsync.io/inject": "true"}},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def _subscription(i: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SyncSubscription",
        "metadata": {"name": f"sub-{i:04d}"},
        "spec": {"service": f"svc-{i % SERVICES}", "events": [f"THING_{i}_CREATED"], "broker": "default"},
    }


LISTING = "/api/queues/%2F?columns=name"


QUEUES_PER_CONNECTION = 100
"""Stand-in consumers per AMQP connection: a connection the broker closes takes only these with it."""


class StandInSidecars:
    """Consumers of every bench subscription's queue, each added as soon as the operator declared it.

    Each queue has a channel of its own, a hundred channels to a connection: a loaded broker closes a
    channel whose quorum queue has not started in time, or a connection that missed heartbeats, and
    only those consumers are added again on the next pass. (With one channel for all, each such close
    dropped every consumer, and the subscriptions waited for consumers, not for the operator.)
    """

    def __init__(self, broker: rabbitmq.Broker, cluster: str) -> None:
        self._broker = broker
        self._pattern = re.compile("^" + re.escape(naming.queue_name(cluster, NAMESPACE, "sub-")) + "[0-9]+$")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stand-in-sidecars", daemon=True)
        self._consumers: dict[str, tuple[pika.BlockingConnection, Any]] = {}
        """queue -> its connection and channel"""
        self._connections: list[pika.BlockingConnection] = []
        self.declared = 0
        """Main queues the last listing found."""

    def consuming(self) -> int:
        """Main queues with a stand-in consumer now."""
        return len(self._consumers)

    def start(self) -> StandInSidecars:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for queue in sorted(self._declared() - self._consumers.keys()):
                    self._consume(queue)
                for connection in list(self._connections):
                    try:
                        connection.process_data_events(time_limit=0.1)
                    except (pika.exceptions.AMQPError, OSError) as e:
                        self._drop(connection, e)
                self._consumers = {q: (conn, ch) for q, (conn, ch) in self._consumers.items() if ch.is_open}
                time.sleep(0.5)
        finally:
            for connection in self._connections:
                with contextlib.suppress(pika.exceptions.AMQPError, OSError):  # the broker may be gone first
                    connection.close()

    def _declared(self) -> set[str]:
        # Matched here: the management API applies ``name``/``use_regex`` only to paged listings, and an
        # unpaged one also returns the trace stream, which refuses a consumer without a prefetch.
        try:
            found = cast(list[dict[str, str]], rabbitmq.management_get(self._broker.management_url, LISTING))
        except OSError:
            return set()
        names = {q["name"] for q in found if self._pattern.match(q["name"])}
        self.declared = len(names)
        return names

    def _consume(self, queue: str) -> None:
        connection = self._connection()
        if connection is None:
            return
        try:
            channel = connection.channel()
            channel.basic_consume(queue, lambda ch, method, *_: ch.basic_ack(method.delivery_tag))
        except pika.exceptions.ChannelClosed as e:  # the queue's Raft group not started yet: next pass
            print(f"  stand-in sidecar for {queue}: {e!r}", flush=True)
        except (pika.exceptions.AMQPError, OSError) as e:
            self._drop(connection, e)
        else:
            self._consumers[queue] = (connection, channel)

    def _connection(self) -> pika.BlockingConnection | None:
        load = Counter(id(conn) for conn, _ in self._consumers.values())
        for connection in self._connections:
            if connection.is_open and load[id(connection)] < QUEUES_PER_CONNECTION:
                return connection
        try:
            connection = pika.BlockingConnection(pika.URLParameters(self._broker.amqp_url))
        except (pika.exceptions.AMQPError, OSError) as e:
            print(f"  stand-in sidecars cannot connect: {e!r}", flush=True)
            return None
        self._connections.append(connection)
        return connection

    def _drop(self, connection: pika.BlockingConnection, error: BaseException) -> None:
        print(f"  stand-in sidecars: a connection closed, its consumers start again: {error!r}", flush=True)
        self._connections.remove(connection)
        self._consumers = {q: (conn, ch) for q, (conn, ch) in self._consumers.items() if conn is not connection}
        with contextlib.suppress(pika.exceptions.AMQPError, OSError):
            connection.close()


def _reconciles(op: operators.OperatorProcess) -> dict[str, float]:
    """The operator's reconcile counter by kind and trigger (``syncsubscriptions/resync``...), from its metrics."""
    with urllib.request.urlopen(op.metrics_url, timeout=10) as resp:
        text = resp.read().decode()
    found: dict[str, float] = {}
    for m in re.finditer(r"^rabbitsync_operator_reconciles_total\{([^}]*)\} ([0-9.e+]+)$", text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        key = f"{labels.get('kind')}/{labels.get('trigger')}"
        found[key] = found.get(key, 0.0) + float(m.group(2))
    return found


def _conditions(custom: client.CustomObjectsApi) -> list[list[dict[str, Any]]]:
    items = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "syncsubscriptions")["items"]
    return [(item.get("status") or {}).get("conditions") or [] for item in items]


def _ready(conditions: list[dict[str, Any]]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _ready_count(custom: client.CustomObjectsApi) -> int:
    return sum(_ready(c) for c in _conditions(custom))


def _ready_but_not_all_true(custom: client.CustomObjectsApi) -> int:
    """Ready subscriptions with another condition not True: a status that contradicts itself."""
    found = [c for c in _conditions(custom) if _ready(c) and any(x["status"] != "True" for x in c)]
    for c in found[:3]:
        print("  Ready, but", [(x["type"], x["status"], x["reason"]) for x in c if x["status"] != "True"], flush=True)
    return len(found)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _wait(predicate: Any, timeout: float, step: float = 1.0) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(step)
    return None


def _drift(broker: rabbitmq.Broker, cluster: str) -> float | None:
    """Delete sub-0000's DLQ and its binding; seconds until the operator restored both."""
    vhost = "%2F"
    queue = naming.queue_name(cluster, NAMESPACE, "sub-0000")
    dlq = urllib.parse.quote(f"{queue}.dlq", safe="")
    rabbitmq.management_request(broker.management_url, "DELETE", f"/api/queues/{vhost}/{dlq}")
    bindings = rabbitmq.management_get(
        broker.management_url, f"/api/bindings/{vhost}/e/{EXCHANGE}/q/{urllib.parse.quote(queue, safe='')}"
    )
    for b in bindings:  # type: ignore[attr-defined]
        path = f"/api/bindings/{vhost}/e/{EXCHANGE}/q/{urllib.parse.quote(queue, safe='')}/{b['properties_key']}"
        rabbitmq.management_request(broker.management_url, "DELETE", path)

    def restored() -> bool:
        names = {q["name"] for q in rabbitmq.management_get(broker.management_url, f"/api/queues/{vhost}?columns=name")}  # type: ignore[attr-defined]
        again = rabbitmq.management_get(
            broker.management_url, f"/api/bindings/{vhost}/e/{EXCHANGE}/q/{urllib.parse.quote(queue, safe='')}"
        )
        return f"{queue}.dlq" in names and bool(again)

    return _wait(restored, 180)


def _operator_connections(broker: rabbitmq.Broker) -> int:
    found = rabbitmq.management_get(broker.management_url, "/api/connections?columns=client_properties")
    return sum(1 for c in found if (c.get("client_properties") or {}).get("connection_name") == "rabbitsync-operator")  # type: ignore[union-attr]


def _tolerant(measure: Any) -> Any:
    """The figure, or None when the overloaded broker's management API timed out measuring it."""
    try:
        return measure()
    except OSError as e:
        print(f"  not measured: {e}", flush=True)
        return None


def run(
    subscriptions: int, idle_seconds: float, timeout: float, base: Path, broker_connections: int = 1
) -> dict[str, Any]:
    broker = rabbitmq.start(base / "rabbitmq")
    cluster = None
    op = None
    sidecars: StandInSidecars | None = None
    try:
        cluster = controlplane.start("east", binaries.ensure_binaries(), base / "east", base / "east.kubeconfig")
        api = config.new_client_from_config(config_file=cluster.kubeconfig)
        op = operators.start(
            "east",
            Path(cluster.kubeconfig),
            base / "operators",
            env={"RABBITSYNC_LOG_FORMAT": "text", "RABBITSYNC_BROKER_CONNECTIONS": str(broker_connections)},
        )
        core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
        data = {"uri": broker.amqp_url, "managementUri": broker.management_url}
        core.create_namespaced_secret(
            NAMESPACE, client.V1Secret(metadata=client.V1ObjectMeta(name="rabbitmq"), string_data=data)
        )
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            NAMESPACE,
            "syncbrokers",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "SyncBroker",
                "metadata": {"name": "default"},
                "spec": {"secretRef": {"name": "rabbitmq"}, "exchange": EXCHANGE},
            },
        )
        for s in range(SERVICES):
            apps.create_namespaced_deployment(NAMESPACE, _deployment(f"svc-{s}"))
        sidecars = stand_ins = StandInSidecars(broker, "east").start()
        # Where the machine's CPU goes while the subscriptions converge: the broker, the API server, etcd
        # and the controller manager share the cores with the operator; when they are saturated, Ready
        # waits for all of them.
        cpu = procstat.CpuSplit.of_pids(
            {
                "broker": list(rabbitmq_teardown.node_processes(broker.files.pid_file)),
                **{p.name: [p.pid] for p in cluster.processes},
                "operator": [op.record.pid],
                "bench": [os.getpid()],
            }
        )
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda i: custom.create_namespaced_custom_object(
                        GROUP, VERSION, NAMESPACE, "syncsubscriptions", _subscription(i)
                    ),
                    range(subscriptions),
                )
            )
        created_s = time.monotonic() - started
        progress: list[tuple[float, int]] = []

        def all_ready() -> bool:
            progress.append((round(time.monotonic() - started, 1), _ready_count(custom)))
            # Whether Ready waits for the operator's declarations, for the consumers, or for the
            # operator's next look at a queue consumed already.
            print(
                f"  {progress[-1][0]:7.1f}s  {progress[-1][1]}/{subscriptions} Ready"
                f"  (main queues {stand_ins.declared}, consumed {stand_ins.consuming()})",
                flush=True,
            )
            return progress[-1][1] == subscriptions

        waited = _wait(all_ready, timeout, step=5.0)
        ready_s = None if waited is None else time.monotonic() - started
        converging_cpu = cpu.percent()
        pid = op.record.pid
        # Let the last status writes and the first sweep pass before measuring quiet.
        time.sleep(10)
        cpu_before, quiet_started, reconciles_before = procstat.cpu_seconds(pid), time.monotonic(), _reconciles(op)
        time.sleep(idle_seconds)
        idle_cpu = 100 * (procstat.cpu_seconds(pid) - cpu_before) / (time.monotonic() - quiet_started)
        reconciles = _reconciles(op)
        idle_reconciles = {k: round(v - reconciles_before.get(k, 0.0)) for k, v in reconciles.items()}
        rss = _rss_mb(pid)
        contradicting = _tolerant(lambda: _ready_but_not_all_true(custom))
        connections = _tolerant(lambda: _operator_connections(broker))
        drift_s = _tolerant(lambda: _drift(broker, "east"))
        return {
            "subscriptions": subscriptions,
            "broker_connections": broker_connections,
            "create_s": round(created_s, 1),
            "ready_s": None if ready_s is None else round(ready_s, 1),
            "ready_at_timeout": progress[-1][1] if progress else 0,
            "ready_but_a_condition_not_true": contradicting,
            "converging_cpu_percent": converging_cpu,
            "drift_repair_s": None if drift_s is None else round(drift_s, 1),
            "operator_rss_mb": round(rss, 1),
            "idle_cpu_percent": round(idle_cpu, 2),
            "idle_window_s": idle_seconds,
            "idle_reconciles": idle_reconciles,
            "operator_connections": connections,
        }
    finally:
        if sidecars is not None:
            sidecars.stop()
        if op is not None:
            operators.stop(op, base / "operators")
        if cluster is not None:
            controlplane.stop(cluster)
        rabbitmq.stop(broker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--broker-connections", type=int, default=1, help="RABBITSYNC_BROKER_CONNECTIONS")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(
            json.dumps(
                run(args.subscriptions, args.idle_seconds, args.timeout, Path(tmp), args.broker_connections), indent=2
            )
        )


if __name__ == "__main__":
    main()
