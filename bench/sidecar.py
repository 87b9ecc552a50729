"""Sidecar drain vs hand-written pika consumers: same handler, same inbox, same database, one run.

Each variant drains ``events`` RESTAURANT_CREATED events from a quorum queue of its own into a fresh
copy of restaurant-menu's migrated SQLite database, through restaurant-menu's real handler and
:func:`rabbitsync.django.inbox.apply`:

- ``sidecar``: ``manage.py rabbitsync_sidecar`` as the operator configures it (prefetch 10);
- ``sidecar_batched``: the same with batch mode on (``RABBITSYNC_CONSUME_BATCH``, prefetch = batch);
- ``sidecar_parallel``: batch mode and ``RABBITSYNC_CONSUME_WORKERS`` (PostgreSQL only, so only
  when a ``database_url`` is given; on SQLite the sidecar refuses workers > 1);
- ``handwritten``: a plain pika consumer calling ``inbox.apply`` then ``basic_ack`` per message;
- ``handwritten_batched``: the same, ``batch`` messages per transaction, one ``multiple=True`` ack;
- ``ack_only``: a pika consumer that acks and does nothing else (the broker's and pika's ceiling).

Every consumer is a process of its own started on an empty queue; once it consumes, the bench
publishes the events (pipelined confirms, far faster than any consumer) and the drain rate is
taken from the inbox rows' ``received_at`` (first to last; the ack-only child times itself). The
processes' RSS is read from ``/proc`` while idle and, sampled, while draining. Ratios are what to
compare: the machine is shared and noisy.

    PYTHONPATH=hack:bench .venv/bin/python bench/sidecar.py [--events 5000] [--json out.json]

``--profile DIR`` runs each sidecar under ``py-spy record`` (if installed) and keeps its flame data.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from rows import Row, verdict

REPO = Path(__file__).resolve().parents[1]
SERVICE_DIR = REPO / "services" / "restaurant-menu"
CLUSTER, NAMESPACE = "bench", "bench"
RESTAURANT_CREATED = "RESTAURANT_CREATED"
_RESULT = "bench-result: "
VARIANTS = ("ack_only", "handwritten", "handwritten_batched", "sidecar", "sidecar_batched", "sidecar_parallel")


def run(
    amqp_url: str,
    management_url: str,
    *,
    events: int = 5000,
    prefetch: int = 10,
    batch: int = 100,
    workers: int = 4,
    database_url: str | None = None,
    variants: tuple[str, ...] = VARIANTS,
    workdir: Path | None = None,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Drain ``events`` through each variant against the broker at ``amqp_url`` (admin user).

    Returns ``{"events", "prefetch", "batch", "<variant>": {"rate", "rss_idle_mb", "rss_peak_mb"}...}``
    (rates in events/s) and the ratios the issue's targets are stated in.
    """
    from harness.identities import Identities

    identities = Identities(amqp_url, management_url)
    results: dict[str, Any] = {"events": events, "prefetch": prefetch, "batch": batch, "workers": workers}
    with _workdir(workdir) as base:
        template = _migrated_database(base)
        try:
            for variant in variants:
                if variant == "sidecar_parallel" and not database_url:
                    continue
                results[variant] = _measure(
                    variant,
                    identities,
                    amqp_url,
                    base,
                    template,
                    events,
                    prefetch,
                    batch,
                    workers,
                    database_url,
                    profile,
                )
                print(f"{variant:20} {results[variant]}", flush=True)
        finally:
            identities.delete_all()
    results["ratios"] = ratios(results)
    return results


def ratios(results: dict[str, Any]) -> dict[str, float]:
    """The issue's comparisons: sidecar / per-message hand-written, batched sidecar / batched hand-written."""
    pairs = {
        "sidecar_vs_handwritten": ("sidecar", "handwritten"),
        "sidecar_batched_vs_handwritten_batched": ("sidecar_batched", "handwritten_batched"),
        "sidecar_parallel_vs_handwritten_batched": ("sidecar_parallel", "handwritten_batched"),
        "sidecar_vs_ack_only": ("sidecar", "ack_only"),
    }
    return {
        name: round(results[a]["rate"] / results[b]["rate"], 2)
        for name, (a, b) in pairs.items()
        if a in results and b in results
    }


COMPARED = (
    # (ratio, the table's label, target)
    ("sidecar_vs_handwritten", "sidecar / hand-written, one event per transaction", 0.8),
    ("sidecar_batched_vs_handwritten_batched", "sidecar batched / hand-written batched", 1.0),
    ("sidecar_parallel_vs_handwritten_batched", "sidecar, batched, parallel workers / hand-written batched", 1.0),
)

RSS_TARGET_MB = 80.0


def table_rows(result: dict[str, Any]) -> list[Row]:
    """The ratios against their targets (each with both rates), then the sidecar's RSS."""
    found = result.get("ratios", {})
    rows: list[Row] = []
    for key, label, target in COMPARED:
        if key not in found:
            continue
        a, b = key.split("_vs_")
        rates = f"{result[a]['rate']:,} vs {result[b]['rate']:,}/s"
        rows.append((label, f"{found[key]:.2f}x ({rates})", f">= {target}x", verdict(found[key], target, ">=")))
    sidecars = [result[v] for v in VARIANTS if v.startswith("sidecar") and v in result]
    if sidecars:
        idle = max(v["rss_idle_mb"] for v in sidecars)
        peak = max(v["rss_peak_mb"] for v in sidecars)
        rows.append(
            (
                "sidecar RSS idle / draining (largest)",
                f"{idle} / {peak} MB",
                f"< {RSS_TARGET_MB:g} MB",
                verdict(peak, RSS_TARGET_MB, "<"),
            )
        )
    return rows


# -- one variant --------------------------------------------------------------------------------------


def _measure(
    variant: str,
    identities: Any,
    amqp_url: str,
    base: Path,
    template: Path,
    events: int,
    prefetch: int,
    batch: int,
    workers: int,
    database_url: str | None,
    profile: Path | None,
) -> dict[str, float]:
    batched = variant.endswith(("batched", "parallel"))
    queue_prefetch = max(prefetch, batch) if batched else prefetch
    uid = uuid.uuid4().hex[:8]
    exchange, queue = f"bench.{uid}", f"bench.{uid}.q"
    database = base / f"{variant}.sqlite3"
    shutil.copy(template, database)
    spec = _spec(queue, queue_prefetch, batch if variant.startswith("sidecar_") else 1)
    env = _env(identities, database, exchange, spec, database_url if variant.endswith("parallel") else None)
    if variant == "sidecar_parallel":
        env["RABBITSYNC_CONSUME_WORKERS"] = str(workers)
    _declare(amqp_url, exchange, queue)
    log = base / f"{variant}.log"
    try:
        if variant.startswith("sidecar"):
            command = [sys.executable, "manage.py", "rabbitsync_sidecar"]
            if profile is not None and shutil.which("py-spy"):
                profile.mkdir(parents=True, exist_ok=True)
                out = profile / f"{variant}.txt"
                command = ["py-spy", "record", "--threads", "--format", "raw", "-o", str(out), "--", *command]
            process = _start(command, env, log)
            ready = _sidecar_ready(env)
        else:
            mode = variant
            command = [
                sys.executable,
                __file__,
                "--child",
                mode,
                "--queue",
                queue,
                "--events",
                str(events),
                "--batch",
                str(batch),
                "--prefetch",
                str(queue_prefetch),
            ]
            process = _start(command, env, log)
            ready = lambda: "consuming" in log.read_text()  # noqa: E731
        pid = _target_pid(process)
        _wait(ready, 300, f"{variant} consuming", process, log)
        time.sleep(1.0)
        rss_idle = _rss_mb(pid)
        _publish(identities, amqp_url, exchange, events)
        peak = _drain(
            variant, database, database_url if variant.endswith("parallel") else None, events, process, log, pid
        )
        rate = _child_rate(log) if variant == "ack_only" else _inbox_rate(database, database_url, variant, events)
        return {"rate": round(rate, 1), "rss_idle_mb": rss_idle, "rss_peak_mb": peak}
    finally:
        _stop(locals().get("process"), locals().get("pid"))
        _delete(amqp_url, exchange, queue)


def _env(identities: Any, database: Path, exchange: str, spec: Any, database_url: str | None) -> dict[str, str]:
    from rabbitsync.conventions import broker_username
    from rabbitsync.topology import sidecar_contract as contract

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "services"), str(SERVICE_DIR), os.environ.get("PYTHONPATH", "")]),
        "DJANGO_SETTINGS_MODULE": "restaurant_menu.settings",
        "DJANGO_SECRET_KEY": "bench-only",
        "SQLITE_PATH": str(database),
        "RABBITSYNC_AMQP_URL": identities.url(broker_username(CLUSTER, NAMESPACE, "restaurant-menu")),
        "RABBITSYNC_CLUSTER": CLUSTER,
        "RABBITSYNC_NAMESPACE": NAMESPACE,
        "RABBITSYNC_SERVICE": "restaurant-menu",
        "RABBITSYNC_EXCHANGE": exchange,
        "RABBITSYNC_SUBSCRIPTIONS": contract.dumps([spec]),
        "RABBITSYNC_HTTP_HOST": "127.0.0.1",
        "RABBITSYNC_HTTP_PORT": str(_free_port()),
    }
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def _spec(queue: str, prefetch: int, batch: int) -> Any:
    from rabbitsync.topology.sidecar_contract import ConsumerSpec

    return ConsumerSpec(
        subscription="bench",
        queue=queue,
        events=(RESTAURANT_CREATED,),
        maxAttempts=1,
        retryDelaysMs=(),
        prefetch=prefetch,
        batch=batch,
    )


def _migrated_database(base: Path) -> Path:
    template = base / "template.sqlite3"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "services"), str(SERVICE_DIR), os.environ.get("PYTHONPATH", "")]),
        "DJANGO_SECRET_KEY": "bench-only",
        "SQLITE_PATH": str(template),
    }
    env.pop("DATABASE_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], env=env, cwd=SERVICE_DIR, check=True)
    return template


def migrate_postgres(database_url: str) -> None:
    """restaurant-menu's schema on ``database_url`` (the parallel variant's database)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "services"), str(SERVICE_DIR), os.environ.get("PYTHONPATH", "")]),
        "DJANGO_SECRET_KEY": "bench-only",
        "DATABASE_URL": database_url,
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], env=env, cwd=SERVICE_DIR, check=True)


def _declare(amqp_url: str, exchange: str, queue: str) -> None:
    import pika

    from rabbitsync.conventions import routing_key

    with _channel(amqp_url) as ch:
        ch.exchange_declare(exchange, "topic", durable=True)
        ch.queue_declare(f"{queue}.dlq", durable=True, arguments={"x-queue-type": "quorum"})
        ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
        ch.queue_bind(queue, exchange, routing_key=routing_key(NAMESPACE, RESTAURANT_CREATED))
    del pika


def _delete(amqp_url: str, exchange: str, queue: str) -> None:
    with _channel(amqp_url) as ch:
        ch.queue_delete(queue)
        ch.queue_delete(f"{queue}.dlq")
        ch.exchange_delete(exchange)


@contextmanager
def _channel(amqp_url: str) -> Iterator[Any]:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        yield connection.channel()
    finally:
        connection.close()


def _publish(identities: Any, amqp_url: str, exchange: str, events: int) -> None:
    """``events`` RESTAURANT_CREATED from the restaurant service, as its own broker user, confirmed."""
    from rabbitsync.conventions import broker_username, routing_key
    from rabbitsync.events import Origin, encode, message_properties, new_event
    from rabbitsync.transport import BrokerEndpoint, ConfirmedPublisher, OutgoingMessage, Timeouts

    origin = Origin(CLUSTER, NAMESPACE, "restaurant")
    url = identities.url(broker_username(*origin))
    publisher = ConfirmedPublisher(BrokerEndpoint(url), name="bench-publisher", timeouts=Timeouts()).start()
    try:
        _until(publisher.ready, 30, "the publisher")
        key = routing_key(NAMESPACE, RESTAURANT_CREATED)
        for start in range(0, events, 500):
            messages = []
            for n in range(start, min(events, start + 500)):
                entity = uuid.uuid4()
                event = new_event(
                    type=RESTAURANT_CREATED,
                    origin=origin,
                    subject=str(entity),
                    data={
                        "id": str(entity),
                        "name": f"bench {n}",
                        "email": "b@example.com",
                        "address": "x",
                        "cuisine": "bench",
                    },
                )
                messages.append(OutgoingMessage(exchange, key, encode(event), message_properties(event)))
            publisher.publish(messages, timeout=60)
    finally:
        publisher.close()


def _drain(
    variant: str,
    database: Path,
    database_url: str | None,
    events: int,
    process: subprocess.Popen[bytes],
    log: Path,
    pid: int,
) -> float:
    """Wait until every event is applied (acked, for ack-only); the peak RSS seen meanwhile (MB)."""
    peak = 0.0
    deadline = time.monotonic() + max(600.0, events / 5)
    while time.monotonic() < deadline:
        peak = max(peak, _rss_mb(pid))
        if variant == "ack_only":
            if process.poll() is not None:
                return peak
        elif _inbox_count(database, database_url) >= events:
            return peak
        if process.poll() is not None:
            raise SystemExit(f"{variant} exited early:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    raise SystemExit(f"{variant}: not drained in time:\n{log.read_text()[-3000:]}")


def _inbox_count(database: Path, database_url: str | None) -> int:
    return int(_inbox_query(database, database_url, "SELECT COUNT(*) FROM rabbitsync_inbox")[0])


def _inbox_rate(database: Path, database_url: str | None, variant: str, events: int) -> float:
    first, last, count = _inbox_query(
        database,
        database_url if variant.endswith("parallel") else None,
        "SELECT MIN(received_at), MAX(received_at), COUNT(*) FROM rabbitsync_inbox",
    )
    seconds = (_as_time(last) - _as_time(first)).total_seconds()
    # N rows span N-1 intervals between the first insert and the last one.
    return (int(count) - 1) / seconds


def _inbox_query(database: Path, database_url: str | None, sql: str) -> tuple[Any, ...]:
    if database_url:
        import psycopg

        with psycopg.connect(database_url) as connection:
            row = connection.execute(sql).fetchone()
    else:
        with sqlite3.connect(database, timeout=30) as connection:
            row = connection.execute(sql).fetchone()
    assert row is not None
    return tuple(row)


def _as_time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _child_rate(log: Path) -> float:
    line = next(line for line in reversed(log.read_text().splitlines()) if line.startswith(_RESULT))
    result = json.loads(line.removeprefix(_RESULT))
    return float(result["events"]) / float(result["seconds"])


# -- processes ---------------------------------------------------------------------------------------


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, cwd=SERVICE_DIR, stdout=out, stderr=subprocess.STDOUT)


def _target_pid(process: subprocess.Popen[bytes]) -> int:
    """The Python process itself, also when py-spy started it as its child."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if Path(f"/proc/{process.pid}/comm").read_text().strip() != "py-spy":
            return process.pid
        # Every thread's ``children``: the file lists only what that very thread started.
        kids = [kid for task in Path(f"/proc/{process.pid}/task").iterdir() for kid in _read_split(task / "children")]
        if kids:
            return int(kids[0])
        time.sleep(0.05)
    raise SystemExit(f"py-spy (pid {process.pid}) started no child in 60 s")


def _read_split(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except OSError:  # the task has exited meanwhile
        return []


def _sidecar_ready(env: dict[str, str]) -> Callable[[], bool]:
    import urllib.request

    url = f"http://127.0.0.1:{env['RABBITSYNC_HTTP_PORT']}/readyz"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    return ready


def _wait(ready: Callable[[], bool], timeout: float, what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what}: failed\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def _until(ready: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not ready in {timeout}s")
        time.sleep(0.01)


def _stop(process: subprocess.Popen[bytes] | None, pid: int | None) -> None:
    if process is None or process.poll() is not None:
        return
    # The consumer itself first: py-spy, when it runs it, writes its profile once its child exits.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid or process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        for stuck in {pid or process.pid, process.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stuck, signal.SIGKILL)
        process.wait(10)


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _workdir(workdir: Path | None) -> Iterator[Path]:
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    with tempfile.TemporaryDirectory(prefix="bench-sidecar-") as tmp:
        yield Path(tmp)


# -- the hand-written consumers (run as ``--child``) ---------------------------------------------------


def child(mode: str, queue: str, events: int, batch: int, prefetch: int) -> None:
    """A hand-written pika consumer: what a team would write without rabbitsync's sidecar."""
    import django
    import pika

    django.setup()
    from django.db import transaction

    from rabbitsync.django import inbox
    from rabbitsync.events import decode

    connection = pika.BlockingConnection(pika.URLParameters(os.environ["RABBITSYNC_AMQP_URL"]))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=prefetch)
    pending: list[tuple[int, bytes]] = []
    done, first = 0, 0.0
    print("consuming", flush=True)
    for method, _properties, body in channel.consume(queue, inactivity_timeout=0.05):
        if method is not None:
            first = first or time.perf_counter()
            pending.append((method.delivery_tag, body))
        if not pending or (mode == "handwritten_batched" and method is not None and len(pending) < batch):
            continue
        if mode == "handwritten_batched":
            with transaction.atomic():
                for _tag, raw in pending:
                    inbox.apply(decode(raw))  # its own atomic: a savepoint inside the batch's transaction
            channel.basic_ack(pending[-1][0], multiple=True)
        else:
            tag, raw = pending[0]
            if mode == "handwritten":
                inbox.apply(decode(raw))
            channel.basic_ack(tag)
        done += len(pending)
        pending.clear()
        if done >= events:
            break
    print(_RESULT + json.dumps({"events": done, "seconds": time.perf_counter() - first}), flush=True)
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--prefetch", type=int, default=10)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--postgres", action="store_true", help="also the parallel variant, on the harness PostgreSQL")
    parser.add_argument("--profile", type=Path, help="py-spy raw profiles of the sidecars go here")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", choices=("ack_only", "handwritten", "handwritten_batched"), help=argparse.SUPPRESS)
    parser.add_argument("--queue", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.queue, args.events, args.batch, args.prefetch)
        return
    from harness import postgres, rabbitmq

    with tempfile.TemporaryDirectory() as tmp:
        broker = rabbitmq.start(Path(tmp) / "rabbitmq")
        try:
            with _maybe_postgres(args.postgres, postgres) as database_url:
                results = run(
                    broker.amqp_url,
                    broker.management_url,
                    events=args.events,
                    prefetch=args.prefetch,
                    batch=args.batch,
                    workers=args.workers,
                    database_url=database_url,
                    variants=tuple(args.variants.split(",")),
                    workdir=args.workdir,
                    profile=args.profile,
                )
        finally:
            rabbitmq.stop(broker)
    print(json.dumps(results["ratios"], indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


@contextmanager
def _maybe_postgres(wanted: bool, postgres: Any) -> Iterator[str | None]:
    if not wanted:
        yield None
        return
    postgres.ensure_installed()
    with postgres.running() as server:
        migrate_postgres(server.url)
        yield server.url


if __name__ == "__main__":
    main()
