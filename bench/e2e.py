"""End to end on the demo's services: POST a restaurant in east -> its row in west restaurant-menu's database.

The services run as ``make demo`` runs them (the harness's two clusters, the pod runner, gunicorn, the
injected sidecars, one broker); an environment already up in the state directory is reused, its pods
restarted from this checkout. Writes are
offered open-loop: write *i* of a run at rate *R* is due at ``i / R`` s whatever became of the earlier
ones, so a service that falls behind shows as latency, not as a lower rate. A write's latency runs
from its due time until a watcher that reads west restaurant-menu's SQLite file every
``POLL_SECONDS`` sees the row (so a figure may be up to that much late, never early).

Where the time goes, per write, from timestamps taken on the way (the wall clock of one machine):

- ``request``: POST sent -> its outbox row inserted in east (``created_at``, inside the transaction);
- ``east_to_broker``: the row inserted -> delivered by the broker to a tap consumer of a quorum queue
  bound like west restaurant-menu's (east's commit, the relay's wake-up, claim and publish, routing);
- ``broker_to_handler``: the tap's delivery -> west's inbox row inserted (``received_at``: the
  sidecar's delivery, wait loop and checks, up to the handler's first statement);
- ``handler_commit``: the inbox row -> seen by the watcher (the handler, its commit, the poll).

    RABBITSYNC_BROKER_PRIVATE=1 PYTHONPATH=hack:bench .venv/bin/python bench/e2e.py --rates 50,200 --duration 60
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import sqlite3
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pika
import procstat
from rows import Row, summary_ms, target_row

from harness import demo, environment, operators

POLL_SECONDS = 0.002
LATE_SECONDS = 10.0
"""A write no sender could post within this long of its due time is dropped and counted as failed, so
a rate the service cannot take ends with the run instead of queueing for minutes."""
DRAIN_SECONDS = 60.0
"""How long after a run its rows may still arrive; later ones count as not arrived."""
SENDERS = 48
"""Threads posting: enough that a slow answer never holds back the writes due after it."""
TAP_QUEUE = "bench.e2e.tap"
TARGETS: dict[str | float, tuple[float | None, float | None]] = {
    "serial": (10.0, 50.0),
    50.0: (15.0, 60.0),
    200.0: (None, 250.0),
}
"""p50 and p99 targets (ms) of issue 11, by offered rate."""
STAGES = ("request", "east_to_broker", "broker_to_handler", "handler_commit")
PROCESS_GROUPS = {
    "sidecars": "rabbitsync_sidecar",
    "services (gunicorn, relay)": "gunicorn",
    "broker": "beam.smp",
    "bench": "bench/e2e.py",
    "API servers": "kube-apiserver",
    "etcd": "bin/etcd",
    "pod runner": "harness pods",
    "operators": "rabbitsync-operator",
}
"""Where the cores go while writes are offered: group -> what its processes' command lines contain."""


@dataclass
class Write:
    due: float
    sent: float = 0.0
    answered: float = 0.0
    entity: str = ""
    error: str = ""


@dataclass
class Watcher:
    """Reads new rows of west restaurant-menu's restaurant table as they commit: when each was first seen."""

    database: Path
    seen: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with closing(sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)) as db:
            last = db.execute("SELECT coalesce(max(rowid), 0) FROM restaurant_menu_restaurant").fetchone()[0]
            while not self._stop.is_set():
                rows = db.execute("SELECT rowid, id FROM restaurant_menu_restaurant WHERE rowid > ?", (last,))
                now = time.time()
                for rowid, entity in rows.fetchall():
                    self.seen.setdefault(uuid.UUID(str(entity)).hex, now)
                    last = max(last, rowid)
                time.sleep(POLL_SECONDS)

    def stop(self) -> None:
        self._stop.set()


class Tap:
    """A quorum queue bound like west restaurant-menu's: when the broker delivered each restaurant event."""

    def __init__(self, amqp_url: str) -> None:
        self.arrived: dict[str, float] = {}
        self._url = amqp_url
        self._stop = threading.Event()
        self._ready = threading.Event()

    def run(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(self._url))
        channel = connection.channel()
        channel.queue_declare(TAP_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(TAP_QUEUE, "rabbitsync.events", f"{demo.APP_NAMESPACE}.RESTAURANT_CREATED")
        channel.basic_qos(prefetch_count=1000)

        def on_message(ch: Any, method: Any, properties: Any, _body: bytes) -> None:
            self.arrived[str(properties.message_id)] = time.time()
            ch.basic_ack(method.delivery_tag)

        channel.basic_consume(TAP_QUEUE, on_message)
        self._ready.set()
        while not self._stop.is_set():
            connection.process_data_events(time_limit=0.1)
        channel.queue_delete(TAP_QUEUE)
        connection.close()

    def stop(self) -> None:
        self._stop.set()


class Poster:
    """POSTs restaurants to one service over a kept-alive connection per thread."""

    def __init__(self, base_url: str) -> None:
        self._url = urllib.parse.urlsplit(base_url)
        self._local = threading.local()

    def post(self, write: Write, name: str) -> None:
        body = json.dumps({"name": name}).encode()
        for attempt in (1, 2):  # a kept-alive connection the server closed is reopened once
            connection = self._connection(fresh=attempt == 2)
            write.sent = time.time()
            try:
                connection.request("POST", "/api/restaurants/", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as e:
                write.error = f"{type(e).__name__}: {e}"
                continue
            write.answered = time.time()
            if response.status != 201:
                write.error = f"HTTP {response.status}"
                return
            write.entity, write.error = uuid.UUID(json.loads(payload)["id"]).hex, ""
            return

    def _connection(self, fresh: bool) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None or fresh:
            if connection is not None:
                connection.close()
            connection = http.client.HTTPConnection(self._url.hostname or "", self._url.port, timeout=30)
            self._local.connection = connection
        return connection


def offered(poster: Poster, rate: float, duration: float) -> list[Write]:
    """Writes due every ``1/rate`` s for ``duration`` s, each posted at its due time by a free sender."""
    writes = [Write(due=0.0) for _ in range(max(1, int(rate * duration)))]
    start = time.time() + 0.2
    jobs: queue.Queue[tuple[int, Write]] = queue.Queue()

    def sender() -> None:
        while True:
            i, write = jobs.get()
            if i < 0:
                return
            if time.time() - write.due > LATE_SECONDS:
                write.error = "not sent: every sender was busy"  # the service cannot take this rate
                continue
            poster.post(write, f"bench {i}")

    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        for _ in range(SENDERS):
            pool.submit(sender)
        for i, write in enumerate(writes):
            write.due = start + i / rate
            time.sleep(max(0.0, write.due - time.time()))
            jobs.put((i, write))
        for _ in range(SENDERS):
            jobs.put((-1, Write(0.0)))
    return writes


def serial(poster: Poster, watcher: Watcher, count: int) -> list[Write]:
    """One write at a time: the next is posted once the previous row is in west's database."""
    writes = []
    for i in range(count):
        write = Write(due=time.time())
        poster.post(write, f"bench serial {i}")
        writes.append(write)
        deadline = time.time() + 30
        while write.entity and write.entity not in watcher.seen and time.time() < deadline:
            time.sleep(POLL_SECONDS / 2)
    return writes


def _timestamp(value: Any) -> float:
    text = str(value)
    return datetime.fromisoformat(text if "+" in text or text.endswith("Z") else text + "+00:00").timestamp()


def _stamps(east_db: Path, west_db: Path) -> dict[str, tuple[str, float, float]]:
    """Per entity (hex id): its event id, when its east outbox row was inserted, when west's inbox row was."""
    with closing(sqlite3.connect(f"file:{east_db}?mode=ro", uri=True)) as db:
        outbox = {
            uuid.UUID(json.loads(bytes(body))["subject"]).hex: (event_id, _timestamp(created))
            for event_id, created, body in db.execute(
                "SELECT event_id, created_at, body FROM rabbitsync_outbox WHERE type = 'RESTAURANT_CREATED'"
            )
        }
    with closing(sqlite3.connect(f"file:{west_db}?mode=ro", uri=True)) as db:
        inbox = {
            event_id: _timestamp(at)
            for event_id, at in db.execute("SELECT event_id, received_at FROM rabbitsync_inbox")
        }
    return {entity: (eid, created, inbox[eid]) for entity, (eid, created) in outbox.items() if eid in inbox}


def figures(
    writes: list[Write], seen: dict[str, float], stamps: dict[str, tuple[str, float, float]], tap: dict[str, float]
) -> dict[str, Any]:
    done = [w for w in writes if w.entity in seen]
    stages: dict[str, list[float]] = {name: [] for name in STAGES}
    for w in done:
        if w.entity not in stamps or stamps[w.entity][0] not in tap:
            continue
        event_id, created, received = stamps[w.entity]
        for name, seconds in zip(
            STAGES,
            (created - w.sent, tap[event_id] - created, received - tap[event_id], seen[w.entity] - received),
            strict=True,
        ):
            stages[name].append(seconds)
    answered = [w for w in writes if w.answered]
    span = max((w.answered for w in answered), default=0.0) - min((w.due for w in writes), default=0.0)
    return {
        "offered": len(writes),
        "answered_per_s": round(len(answered) / span, 1) if answered and span > 0 else 0.0,
        "failed": sum(1 for w in writes if w.error),
        "arrived": len(done),
        "end_to_end": summary_ms([seen[w.entity] - w.due for w in done]),
        "post": summary_ms([w.answered - w.sent for w in writes if w.answered]),
        "stages": {name: summary_ms(values) for name, values in stages.items()},
    }


@contextmanager
def _observing(west_db: Path, amqp_url: str) -> Iterator[tuple[Watcher, Tap]]:
    watcher, tap = Watcher(west_db), Tap(amqp_url)
    threads = [threading.Thread(target=watcher.run, daemon=True), threading.Thread(target=tap.run, daemon=True)]
    for thread in threads:
        thread.start()
    tap._ready.wait(30)
    try:
        yield watcher, tap
    finally:
        watcher.stop()
        tap.stop()
        for thread in threads:
            thread.join(10)


def deployment() -> tuple[environment.Environment, dict[str, dict[str, str]]]:
    """The demo's services, (re)started from this checkout: pods left running by an earlier
    ``make demo`` would run the code they started with."""
    # The pod runner, whatever RABBITSYNC_NODES says: the bench reads the services' databases as files.
    env = environment.up(real_nodes=False)
    operators.down(env.directory)
    kubeconfigs = {name: Path(c.kubeconfig) for name, c in env.clusters.items()}
    return env, demo.deploy(env.directory, kubeconfigs, env.broker.amqp_url, env.broker.management_url)


def _database(env: environment.Environment, cluster: str, service: str) -> Path:
    return env.directory / "pods" / cluster / demo.APP_NAMESPACE / "claims" / f"{service}-data" / f"{service}.sqlite3"


def run(rates: str, duration: float, serial_writes: int) -> dict[str, Any]:
    env, urls = deployment()
    east_db, west_db = _database(env, "east", "restaurant"), _database(env, "west", "restaurant-menu")
    poster = Poster(urls["east"]["restaurant"])
    results: dict[str, Any] = {"poll_ms": POLL_SECONDS * 1000}
    with _observing(west_db, env.broker.amqp_url) as (watcher, tap):
        serial(poster, watcher, 5)  # warm-up: connections, the relay's first publish, caches
        runs: dict[str, list[Write]] = {"serial": serial(poster, watcher, serial_writes)}
        cpu: dict[str, dict[str, float]] = {}
        for rate in (float(r) for r in rates.split(",") if r):
            split = procstat.CpuSplit.of_commands(PROCESS_GROUPS)
            writes = runs[f"{rate:g}"] = offered(poster, rate, duration)
            cpu[f"{rate:g}"] = split.percent()
            _drained(writes, watcher)
        stamps = _stamps(east_db, west_db)
        for name, writes in runs.items():
            results[name] = figures(writes, watcher.seen, stamps, tap.arrived)
            if name in cpu:
                results[name]["cpu_percent_while_offered"] = cpu[name]
            print(f"{name}: {json.dumps(results[name]['end_to_end'])}", flush=True)
    results["duration_s"] = duration
    return results


def _drained(writes: list[Write], watcher: Watcher) -> None:
    deadline = time.time() + DRAIN_SECONDS
    while time.time() < deadline and not all(w.entity in watcher.seen for w in writes if w.entity):
        time.sleep(0.1)


def table_rows(result: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for name, figure in result.items():
        if not isinstance(figure, dict):
            continue
        key: str | float = "serial" if name == "serial" else float(name)
        label = "one write at a time" if name == "serial" else f"{name}/s offered for {result['duration_s']:g} s"
        p50_target, p99_target = TARGETS.get(key, (None, None))
        e2e = figure["end_to_end"]
        for quantile, target in (("p50", p50_target), ("p99", p99_target)):
            label_q = f"e2e {label}: {quantile} (ms)"
            if target is not None:
                rows.append(target_row(label_q, e2e[f"{quantile}_ms"], target, "<="))
            else:
                rows.append((label_q, f"{e2e[f'{quantile}_ms']:,.1f}", "", ""))
        parts = ", ".join(f"{stage} {figure['stages'][stage]['p50_ms']}" for stage in STAGES)
        rows.append((f"e2e {label}: stages p50 (ms)", parts, "", ""))
        taken = f"{figure['answered_per_s']:g}/s; {figure['arrived']:,} of {figure['offered']:,} arrived"
        rows.append((f"e2e {label}: writes the service took", taken, "", ""))
        if "cpu_percent_while_offered" in figure:
            split = dict(figure["cpu_percent_while_offered"])
            busy = split.pop("machine_busy_of_all_cores")
            groups = ", ".join(f"{group} {share}" for group, share in sorted(split.items(), key=lambda kv: -kv[1]))
            shares = f"{groups}; all cores {busy} % busy"
            rows.append((f"e2e {label}: CPU while offered, % of one core", shares, "", ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="50,200")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--serial-writes", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args.rates, args.duration, args.serial_writes)
    for row in table_rows(result):
        print(" | ".join(row))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
