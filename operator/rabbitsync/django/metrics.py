"""The web process's Prometheus metrics at ``/metrics``: the outbox backlog and the age of its oldest unsent row.

Both are read from the outbox table when Prometheus scrapes (one query on the unsent index), not
counted in memory: every worker of a multi-process server then answers the same, and a backlog left by
a process that died is still seen. The names are the sidecar's (``rabbitsync_outbox_backlog``), so one
dashboard query covers both processes. Mount it in the service's URLconf::

    path("metrics", rabbitsync.django.metrics.metrics_view)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime

from django.db import DatabaseError
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from rabbitsync.django.models import OutboxMessage


class OutboxCollector(Collector):
    """``rabbitsync_outbox_backlog`` and ``rabbitsync_outbox_oldest_unsent_age_seconds``, as of now."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        backlog, age = outbox_state(datetime.now(UTC))
        yield GaugeMetricFamily("rabbitsync_outbox_backlog", "Outbox rows not yet confirmed", value=backlog)
        yield GaugeMetricFamily(
            "rabbitsync_outbox_oldest_unsent_age_seconds",
            "Age of the oldest outbox row not yet confirmed (0 when none)",
            value=age,
        )


def outbox_state(now: datetime) -> tuple[float, float]:
    """(unsent rows, age in seconds of the oldest one); NaN for both when the database cannot answer,
    so a scrape shows the gap instead of failing."""
    try:
        found = OutboxMessage.objects.filter(sent_at__isnull=True).aggregate(
            count=Count("id"), oldest=Min("created_at")
        )
    except DatabaseError:
        return math.nan, math.nan
    oldest = found["oldest"]
    return float(found["count"]), max(0.0, (now - oldest).total_seconds()) if oldest else 0.0


def metrics_view(request: HttpRequest) -> HttpResponse:
    registry = CollectorRegistry()
    registry.register(OutboxCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
