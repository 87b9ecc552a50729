"""The sidecar's Prometheus metrics, on a registry of their own (no import-time global state)."""

from __future__ import annotations

import math
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, math.inf)
"""From a few milliseconds (same broker, idle consumer) to hours (a consumer that was down, a replay)."""


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.consumed = Counter("rabbitsync_consumed", "Deliveries received", ["queue"], registry=r)
        self.applied = Counter("rabbitsync_applied", "Events applied by a handler", ["type"], registry=r)
        self.duplicates = Counter(
            "rabbitsync_duplicates_skipped", "Redelivered events already in the inbox", registry=r
        )
        self.own = Counter("rabbitsync_own_events_skipped", "Events this service published in this cluster", registry=r)
        self.retried = Counter("rabbitsync_retried", "Deliveries sent to a delay queue", ["queue"], registry=r)
        self.dead_lettered = Counter(
            "rabbitsync_dead_lettered",
            "Deliveries sent to the dead-letter queue",
            ["queue", "reason"],
            registry=r,
        )
        self.discarded = Counter(
            "rabbitsync_discarded", "Failed deliveries dropped (dead-lettering off)", ["queue"], registry=r
        )
        self.handler_seconds = Histogram(
            "rabbitsync_handler_duration_seconds", "Inbox transaction with the handler", ["type"], registry=r
        )
        self.reconnects = Counter(
            "rabbitsync_reconnects", "Connections redialled after a loss", ["connection"], registry=r
        )
        self.paused = Gauge(
            "rabbitsync_consumer_paused", "1 while consumption waits for the database to answer again", registry=r
        )
        self.infrastructure_errors = Counter(
            "rabbitsync_infrastructure_errors",
            "Handler runs that failed on an unreachable database (no attempt spent)",
            ["error"],
            registry=r,
        )
        self.end_to_end_lag = Histogram(
            "rabbitsync_end_to_end_lag_seconds",
            "Now minus the event's time (its commit in the publisher's outbox) when a handler applied it",
            ["type"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.handler_in_flight = Gauge(
            "rabbitsync_handler_in_flight_seconds", "Age of the handler run in flight (0: none)", registry=r
        )
        self.subscription_consuming = Gauge(
            "rabbitsync_subscription_consuming", "1 while the queue is consumed", ["queue"], registry=r
        )
        self.backfills_completed = Counter(
            "rabbitsync_backfills_completed", "Backfill runs applied in full", ["queue"], registry=r
        )
        self.backfills_served = Counter("rabbitsync_backfills_served", "Backfill runs this service sent", registry=r)
        self.backfill_events_sent = Counter(
            "rabbitsync_backfill_events_sent", "Snapshot events this service sent", registry=r
        )
        self.outbox_backlog = Gauge("rabbitsync_outbox_backlog", "Outbox rows not yet confirmed", registry=r)
        self.outbox_parked = Gauge(
            "rabbitsync_outbox_parked", "Outbox rows parked with a reason (too large, refused too often)", registry=r
        )
        self.outbox_returned = Gauge(
            "rabbitsync_outbox_returned",
            "Publishes this relay got back as unroutable (rows kept), since start",
            registry=r,
        )

    def measure_backlog(self, count: Callable[[], int]) -> None:
        """Compute the backlog at scrape time; a database hiccup shows as NaN, not a crash."""
        self.outbox_backlog.set_function(_safe(count))

    def measure_relay(self, parked: Callable[[], int], returned: Callable[[], int]) -> None:
        """The relay's parked rows and returned publishes, read at scrape time like the backlog."""
        self.outbox_parked.set_function(_safe(parked))
        self.outbox_returned.set_function(_safe(returned))


def _safe(count: Callable[[], int]) -> Callable[[], float]:
    def read() -> float:
        try:
            return float(count())
        except Exception:  # a scrape must never take the sidecar down
            return math.nan

    return read
