"""The operator's Prometheus metrics: reconciles (by kind, trigger and result), their durations, and the
objects it manages (by kind and Ready), on a registry of its own (no import-time global state).

The handlers call ``observe`` around each reconcile and ``forget`` after a cleanup; everything else
(what counts as which result, the per-object bookkeeping behind the gauge) lives here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from rabbitsync.api.conditions import READY
from rabbitsync.operator.outcome import ReconcileOutcome

# kind (plural), namespace, name: one managed object.
ObjectKey = tuple[str, str, str]


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.reconciles = Counter(
            "rabbitsync_operator_reconciles",
            "Reconciles by kind, trigger (change or resync) and result (ready, not_ready, retry, error)",
            ["kind", "trigger", "result"],
            registry=r,
        )
        self.errors = Counter(
            "rabbitsync_operator_reconcile_errors",
            "Reconciles that raised instead of returning a status (a bug or an API server failure)",
            ["kind"],
            registry=r,
        )
        self.duration = Histogram(
            "rabbitsync_operator_reconcile_duration_seconds", "Time of one reconcile", ["kind"], registry=r
        )
        self._ready: dict[ObjectKey, str] = {}
        r.register(_ManagedObjects(self._ready))

    def observe(self, key: ObjectKey, trigger: str, reconcile: Callable[[], ReconcileOutcome]) -> ReconcileOutcome:
        """Run ``reconcile`` for the object ``key``, counting and timing it, and remember its Ready."""
        kind = key[0]
        started = time.monotonic()
        try:
            outcome = reconcile()
        except Exception:
            self.errors.labels(kind).inc()
            self.reconciles.labels(kind, trigger, "error").inc()
            raise
        finally:
            self.duration.labels(kind).observe(time.monotonic() - started)
        ready = _ready_of(outcome.status)
        self._ready[key] = ready
        result = "retry" if outcome.temporary_failure else ("ready" if ready == "True" else "not_ready")
        self.reconciles.labels(kind, trigger, result).inc()
        return outcome

    def forget(self, key: ObjectKey) -> None:
        """The object is gone (its cleanup finished): it is no longer managed."""
        self._ready.pop(key, None)


def _ready_of(status: dict[str, Any]) -> str:
    return next((str(c.get("status")) for c in status.get("conditions", []) if c.get("type") == READY), "Unknown")


class _ManagedObjects(Collector):
    """``rabbitsync_operator_managed_objects{kind,ready}``, counted at scrape time from the last reconciles."""

    def __init__(self, ready: dict[ObjectKey, str]) -> None:
        self._ready = ready

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "rabbitsync_operator_managed_objects",
            "Objects reconciled since start, by kind and Ready",
            labels=["kind", "ready"],
        )
        counts: dict[tuple[str, str], int] = {}
        for (kind, _, _), ready in list(self._ready.items()):
            counts[kind, ready] = counts.get((kind, ready), 0) + 1
        for (kind, ready), count in sorted(counts.items()):
            family.add_metric([kind, ready], count)
        yield family
