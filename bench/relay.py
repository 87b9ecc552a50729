"""The real relay, outbox rows -> confirmed -> marked sent, and where one row's milliseconds go.

In-process: the restaurant service's Django project (SQLite in WAL mode, as in the pods) against a
broker of its own, the events exchange bound to one quorum queue (as a subscription's), which a tap
consumer drains. Three figures:

- ``serial``: one ``publish()`` per transaction, the next only once the previous is marked sent. The
  relay's own steps are timed by wrapping them on the live relay (nothing is inferred): commit ->
  the relay thread's first step (``wake``), the claim transaction if any (``claim``), publish until every
  confirm is in (``publish_confirm``), the sent mark (``mark``); and publish -> delivered to the tap
  consumer (``broker_deliver``), the broker's part;
- ``burst``: ``rows`` committed one per transaction as fast as one thread can, each waking the relay:
  rows/s until the last is marked sent;
- ``drain``: ``rows`` already in the table (a backlog, or a sidecar's sweep after an outage), sent by
  one relay: rows/s, beside the bare publish primitive on the same broker (pipelined confirms with no
  database) so the ratio says what the outbox costs.

    RABBITSYNC_BROKER_PRIVATE=1 PYTHONPATH=hack:bench .venv/bin/python bench/relay.py [--rows 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pika
import publish_throughput
from rows import Row, summary_ms

from harness import rabbitmq
from rabbitsync.topology.trace import trace_plan

REPO = Path(__file__).resolve().parents[1]
EXCHANGE = "rabbitsync.events"
QUEUE = "bench.relay.tap"
STAGES = ("wake", "claim", "publish_confirm", "mark")
WARMUP = 5
"""Rows sent before the serial figures count: the first waits for the relay's connection."""


def _django(scratch: Path, amqp_url: str) -> None:
    """The restaurant service's settings, on a database of its own, relaying to ``amqp_url``."""
    sys.path[:0] = [str(REPO / "services"), str(REPO / "services" / "restaurant")]
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "restaurant.settings",
            "DJANGO_SECRET_KEY": uuid.uuid4().hex * 2,
            "SQLITE_PATH": str(scratch / "restaurant.sqlite3"),
            "RABBITSYNC_AMQP_URL": amqp_url,
            "RABBITSYNC_EXCHANGE": EXCHANGE,
            "LOG_LEVEL": "WARNING",
        }
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


class Tap:
    """A consumer of the quorum queue the exchange routes every event to: when each arrived."""

    def __init__(self, amqp_url: str) -> None:
        self.arrived: dict[str, float] = {}
        self.count = 0
        self._url = amqp_url
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tap", daemon=True)

    def start(self) -> Tap:
        self._thread.start()
        self._ready.wait(30)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(self._url))
        channel = connection.channel()
        channel.exchange_declare(EXCHANGE, "topic", durable=True)
        channel.queue_declare(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(QUEUE, EXCHANGE, "#")
        # The trace exchange and stream the operator declares beside the events exchange: without them
        # the relay's first trace record closed its channel (404), and it reconnected over and over.
        trace = trace_plan(EXCHANGE)
        channel.exchange_declare(trace.declare_exchange, "topic", durable=True)
        for queue in trace.declare_queues:
            channel.queue_declare(queue.name, durable=True, arguments=dict(queue.arguments))
        for binding in trace.bind:
            channel.queue_bind(binding.queue, binding.exchange, binding.routing_key)
        channel.basic_qos(prefetch_count=500)

        def on_message(ch: Any, method: Any, properties: Any, _body: bytes) -> None:
            self.arrived[properties.message_id] = time.perf_counter()
            self.count += 1
            ch.basic_ack(method.delivery_tag)

        channel.basic_consume(QUEUE, on_message)
        self._ready.set()
        while not self._stop.is_set():
            connection.process_data_events(time_limit=0.1)
        connection.close()


class Stopwatch:
    """Wraps the live relay's steps: each call's (start, end), in order, per step."""

    def __init__(self) -> None:
        self.spans: dict[str, list[tuple[float, float]]] = {"claim": [], "send": [], "mark_sent": []}

    def wrap(self, relay: Any) -> None:
        for step in self.spans:
            setattr(relay, step, self._timed(step, getattr(relay, step)))

    def _timed(self, step: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args)
            finally:
                self.spans[step].append((started, time.perf_counter()))

        return timed


def _wait(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("relay bench: rows not sent in time")
        time.sleep(0.0005)


def _publish_one(i: int) -> tuple[str, float]:
    from django.db import transaction

    from rabbitsync.django import publish

    committed: list[float] = []
    with transaction.atomic():
        # Registered first, so it runs right after the COMMIT and before publish()'s relay wake-up.
        transaction.on_commit(lambda: committed.append(time.perf_counter()))
        event = publish("RESTAURANT_CREATED", {"id": str(i), "name": f"bench {i}"}, subject=str(i))
    return event.id, committed[0]


def serial(n: int, tap: Tap) -> dict[str, Any]:
    from rabbitsync.django import relay

    watch = Stopwatch()
    watch.wrap(relay.local_relay())
    stages: dict[str, list[float]] = {name: [] for name in (*STAGES, "broker_deliver", "commit_to_sent")}
    for i in range(-WARMUP, n):
        marks = len(watch.spans["mark_sent"])
        event_id, committed = _publish_one(i)
        _wait(lambda m=marks, e=event_id: len(watch.spans["mark_sent"]) > m and e in tap.arrived)  # type: ignore[misc]
        if i < 0:
            continue
        send, mark = watch.spans["send"][-1], watch.spans["mark_sent"][-1]
        # The claim of this row, if the relay needed one (the fast path sends handed-over rows unclaimed).
        claim = next((c for c in reversed(watch.spans["claim"]) if committed <= c[0] and c[1] <= send[0]), None)
        woke = claim[0] if claim else send[0]
        for name, seconds in zip(
            (*STAGES, "broker_deliver", "commit_to_sent"),
            (
                woke - committed,
                claim[1] - claim[0] if claim else 0.0,
                send[1] - send[0],
                mark[1] - mark[0],
                tap.arrived[event_id] - send[0],
                mark[1] - committed,
            ),
            strict=True,
        ):
            stages[name].append(seconds)
    return {name: summary_ms(values) for name, values in stages.items()}


def burst(n: int, tap: Tap) -> dict[str, Any]:
    from rabbitsync.django import relay

    before = tap.count
    started = time.perf_counter()
    for i in range(n):
        _publish_one(i)
    committed = time.perf_counter()
    _wait(lambda: relay.backlog() == 0 and tap.count - before >= n, timeout=300)
    elapsed = time.perf_counter() - started
    return {"rows": n, "commit_rows_per_s": round(n / (committed - started)), "rows_per_s": round(n / elapsed)}


def drain(n: int, tap: Tap) -> dict[str, Any]:
    from rabbitsync.django import relay
    from rabbitsync.django.conf import get_settings
    from rabbitsync.django.models import OutboxMessage
    from rabbitsync.events import encode, new_event

    origin = get_settings().origin
    events = [new_event(type="RESTAURANT_CREATED", origin=origin, data={"i": i}) for i in range(n)]
    OutboxMessage.objects.bulk_create(
        [OutboxMessage(event_id=e.id, type=e.type, body=encode(e)) for e in events], batch_size=500
    )
    before = tap.count
    sender = relay.OutboxRelay(get_settings(), sweep=False).start()
    try:
        started = time.perf_counter()
        sent = sender.drain()
        elapsed = time.perf_counter() - started
    finally:
        sender.stop()
    _wait(lambda: tap.count - before >= n)
    return {"rows": sent, "rows_per_s": round(sent / elapsed)}


def run(rows: int, scratch: Path, serial_rows: int = 200) -> dict[str, Any]:
    """In a process of its own: Django is set up once per process, from the environment it changes."""
    scratch.mkdir(parents=True, exist_ok=True)
    out = scratch / "relay.json"
    command = [sys.executable, __file__, "--rows", str(rows), "--serial", str(serial_rows), "--json", str(out)]
    subprocess.run(command, check=True, env={**os.environ, "PYTHONPATH": f"{REPO / 'hack'}:{REPO / 'bench'}"})
    return dict(json.loads(out.read_text()))


def measure(rows: int, scratch: Path, serial_rows: int) -> dict[str, Any]:
    broker = rabbitmq.start(scratch / "rabbitmq")
    try:
        _django(scratch, broker.amqp_url)
        tap = Tap(broker.amqp_url).start()
        try:
            result = {"serial": serial(serial_rows, tap), "burst": burst(rows, tap), "drain": drain(rows, tap)}
        finally:
            from rabbitsync.django import relay

            relay.stop_local_relay()
            tap.stop()
        rate = publish_throughput.measure("pipelined", publish_throughput.pipelined, broker.amqp_url, rows)
        result["primitive_rows_per_s"] = round(rate)
        return result
    finally:
        rabbitmq.stop(broker)


def table_rows(result: dict[str, Any]) -> list[Row]:
    serial_stages = result["serial"]
    drain_rate, primitive = result["drain"]["rows_per_s"], result["primitive_rows_per_s"]
    rows: list[Row] = [
        (
            "relay: drain of a backlog / bare pipelined publish",
            f"{drain_rate / primitive:.2f}x ({drain_rate:,} vs {primitive:,} rows/s)",
            "",
            "",
        ),
        ("relay: rows committed one per transaction -> all sent", f"{result['burst']['rows_per_s']:,} rows/s", "", ""),
    ]
    total = serial_stages["commit_to_sent"]
    rows.append(
        ("relay: one row, commit -> marked sent", f"p50 {total['p50_ms']} ms, p99 {total['p99_ms']} ms", "", "")
    )
    parts = ", ".join(f"{name} {serial_stages[name]['p50_ms']}" for name in (*STAGES, "broker_deliver"))
    rows.append(("relay: one row's steps, p50 ms", parts, "", ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--serial", type=int, default=200)
    parser.add_argument("--json", type=Path, help="write the result there")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args.rows, Path(tmp), args.serial)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    for row in table_rows(result):
        print(" | ".join(row[:2]))


if __name__ == "__main__":
    main()
