"""Assembles the sidecar process: consumer, outbox relay sweep, probes, metrics, signals.

A sidecar with no subscriptions is the one of a service that only publishes: it runs the relay's
sweep, the probes and the metrics, and consumes nothing (the web process's own relay sends rows
within milliseconds; the sweep sends what a crashed or idle web process left behind).

SIGTERM (what the kubelet sends) or SIGINT asks for a graceful stop: the delivery being handled
is finished and acked, the relay finishes its batch, then the process exits 0. A second signal
exits at once — the broker redelivers whatever was unacked, the inbox keeps that harmless.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from functools import partial
from types import FrameType

from django.db import connection as db_connection

from rabbitsync.django import connection, relay, retention
from rabbitsync.django.conf import ImproperlyConfigured, Settings, get_settings
from rabbitsync.django.handlers import registry
from rabbitsync.django.snapshots import snapshots
from rabbitsync.sidecar import logs
from rabbitsync.sidecar.consumer import Consumer
from rabbitsync.sidecar.health import HealthServer, State
from rabbitsync.sidecar.metrics import Metrics
from rabbitsync.sidecar.snapshots import SnapshotServer
from rabbitsync.topology.sidecar_contract import ConsumerSpec, env_name
from rabbitsync.transport import InvalidEndpoint, connection_parameters

log = logging.getLogger(__name__)

PURGE_INTERVAL = 600.0
"""Seconds between deletions of expired outbox/inbox rows; retention is days, no hurry."""
_RELAY_CHECK_INTERVAL = 1.0
"""Seconds between looks at the relay thread of a publish-only sidecar; also how late a stop is noticed."""


def run(settings: Settings | None = None) -> int:
    """Run until signalled; the process exit code."""
    logs.configure(os.environ.get("RABBITSYNC_LOG_LEVEL", "INFO"))
    try:
        settings = settings or get_settings()
        _check(settings)
    except (ImproperlyConfigured, InvalidEndpoint) as e:
        # Both messages name what is wrong without quoting the broker URI (it holds a password).
        log.error("sidecar misconfigured", extra={"error": str(e)})
        return 2
    specs = list(settings.subscriptions)
    _warn_unhandled(specs)

    metrics = Metrics()
    metrics.measure_backlog(_backlog)
    state = State(publish_only=not specs, handler_deadline=settings.handler_deadline)
    stop = threading.Event()
    _install_signals(stop)
    http = HealthServer(settings.http_port, state, metrics, host=settings.http_host).start()
    outbox_relay = relay.local_relay(sweep=True)
    metrics.measure_relay(partial(_counted, relay.parked), lambda: outbox_relay.returned_total)
    if snapshots.types():  # a service with snapshot sources answers backfill requests
        SnapshotServer(settings, metrics).start(stop)
    housekeeping = threading.Thread(target=_purge_loop, args=(settings, stop), name="rabbitsync-purge", daemon=True)
    housekeeping.start()
    log.info(
        "sidecar started",
        extra={
            "service": settings.service,
            "cluster": settings.cluster,
            "http_port": http.port,
            "subscriptions": len(specs),
        },
    )
    try:
        if specs:
            _consume(settings, specs, metrics, state, stop)
        else:
            log.info("no subscriptions: relaying the outbox only")
            _relay_only(outbox_relay, state, stop)
    finally:
        relay.stop_local_relay()
        http.stop()
        log.info("sidecar stopped", extra={"relayed": outbox_relay.sent_total})
    return 0


def _check(settings: Settings) -> None:
    """Refuse now, not at the first event: no broker, an unusable broker URI, no identity."""
    # The types were checked when the settings were read; what is left is whether they can work.
    if not settings.amqp_url:
        raise ImproperlyConfigured(f"{env_name('amqp_url')} is not set")
    # Builds what every connection of the process will be built from: a URI that pika would refuse
    # (a bad option, an unreadable CA) is refused here, once, with a clear message.
    connection_parameters(
        connection.endpoint(settings),
        name=connection.connection_name(settings, "sidecar"),
        timeouts=connection.timeouts(settings),
    )
    settings.origin  # noqa: B018 -- raises if CLUSTER/SERVICE are missing


def _consume(
    settings: Settings, specs: list[ConsumerSpec], metrics: Metrics, state: State, stop: threading.Event
) -> None:
    publisher = connection.publisher(
        settings, role="reroute", on_reconnect=lambda: metrics.reconnects.labels("publisher").inc()
    ).start()
    try:
        Consumer(settings, specs, publisher=publisher, metrics=metrics, state=state).run(stop)
    finally:
        publisher.close()


def _relay_only(outbox_relay: relay.OutboxRelay, state: State, stop: threading.Event) -> None:
    """A service that only publishes: nothing to consume, the relay sweeps its outbox.

    Liveness follows the relay thread: should it ever die, /healthz fails and the kubelet restarts us.
    """
    while not stop.wait(_RELAY_CHECK_INTERVAL):
        if outbox_relay.alive():
            state.turn()


def _warn_unhandled(specs: list[ConsumerSpec]) -> None:
    missing = sorted({t for s in specs for t in s.events} - registry.types())
    if missing:
        # Not fatal: such events go to the dead-letter queue with a clear reason, where they can be
        # replayed once a release with the handler is out.
        log.warning("subscribed event types without a handler", extra={"types": missing})


def _backlog() -> int:
    return _counted(relay.backlog)


def _counted(count: Callable[[], int]) -> int:
    # Runs on an HTTP thread: do not leave a database connection behind per scrape thread.
    try:
        return count()
    finally:
        db_connection.close()


def _purge_loop(settings: Settings, stop: threading.Event) -> None:
    while not stop.wait(PURGE_INTERVAL):
        try:
            outbox, inbox = retention.purge(settings)
            log.info("purged old rows", extra={"outbox": outbox, "inbox": inbox})
        except Exception:  # housekeeping must never stop the sidecar
            log.exception("purge failed")
        finally:
            db_connection.close()


def _install_signals(stop: threading.Event) -> None:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            log.warning("second signal: exiting now", extra={"signal": signum})
            os._exit(128 + signum)
        log.info("signal received: finishing the in-flight delivery", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
