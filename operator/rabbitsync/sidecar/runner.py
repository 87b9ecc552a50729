"""Assembles the sidecar process: consumer, outbox relay sweep, probes, metrics, signals.

SIGTERM (what the kubelet sends) or SIGINT asks for a graceful stop: the delivery being handled
is finished and acked, the relay finishes its batch, then the process exits 0. A second signal
exits at once — the broker redelivers whatever was unacked, the inbox keeps that harmless.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

from django.db import connection as db_connection

from rabbitsync.django import connection, relay, retention
from rabbitsync.django.conf import ImproperlyConfigured, Settings, get_settings
from rabbitsync.django.handlers import registry
from rabbitsync.sidecar import logs
from rabbitsync.sidecar.consumer import Consumer
from rabbitsync.sidecar.health import HealthServer, State
from rabbitsync.sidecar.metrics import Metrics
from rabbitsync.topology.sidecar_contract import ConsumerSpec, env_name

log = logging.getLogger(__name__)

PURGE_INTERVAL = 600.0
"""Seconds between deletions of expired outbox/inbox rows; retention is days, no hurry."""


def run(settings: Settings | None = None) -> int:
    """Run until signalled; the process exit code."""
    logs.configure(os.environ.get("RABBITSYNC_LOG_LEVEL", "INFO"))
    try:
        settings = settings or get_settings()
        specs = _subscriptions(settings)
        settings.origin  # noqa: B018 -- fail now, not at the first event, if CLUSTER/SERVICE are missing
    except ImproperlyConfigured as e:
        log.error("sidecar misconfigured", extra={"error": str(e)})
        return 2
    _warn_unhandled(specs)

    metrics = Metrics()
    metrics.measure_backlog(_backlog)
    state = State()
    stop = threading.Event()
    _install_signals(stop)
    http = HealthServer(settings.http_port, state, metrics, host=settings.http_host).start()
    outbox_relay = relay.local_relay(sweep=True)
    publisher = connection.publisher(
        settings, role="reroute", on_reconnect=lambda: metrics.reconnects.labels("publisher").inc()
    ).start()
    housekeeping = threading.Thread(target=_purge_loop, args=(settings, stop), name="rabbitsync-purge", daemon=True)
    housekeeping.start()
    log.info(
        "sidecar started", extra={"service": settings.service, "cluster": settings.cluster, "http_port": http.port}
    )
    try:
        Consumer(settings, specs, publisher=publisher, metrics=metrics, state=state).run(stop)
    finally:
        relay.stop_local_relay()
        publisher.close()
        http.stop()
        log.info("sidecar stopped", extra={"relayed": outbox_relay.sent_total})
    return 0


def _subscriptions(settings: Settings) -> list[ConsumerSpec]:
    # Their types were checked when the settings were read; what is left is whether there is work.
    if not settings.amqp_url:
        raise ImproperlyConfigured(f"{env_name('amqp_url')} is not set")
    if not settings.subscriptions:
        raise ImproperlyConfigured(f"{env_name('subscriptions')} lists no subscription: nothing to consume")
    return list(settings.subscriptions)


def _warn_unhandled(specs: list[ConsumerSpec]) -> None:
    missing = sorted({t for s in specs for t in s.events} - registry.types())
    if missing:
        # Not fatal: such events go to the dead-letter queue with a clear reason, where they can be
        # replayed once a release with the handler is out.
        log.warning("subscribed event types without a handler", extra={"types": missing})


def _backlog() -> int:
    # Runs on an HTTP thread: do not leave a database connection behind per scrape thread.
    try:
        return relay.backlog()
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
