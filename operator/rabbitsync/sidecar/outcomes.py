"""What the sidecar notes once an event's fate is settled: its end-to-end lag and its trace record.

Called by the consumer after the ack (applied, a duplicate, its own event) or after the confirmed
reroute (retried, dead-lettered), so a record says what happened, not what was attempted. Both are
cheap and cannot fail the delivery: a histogram observation, and a record put in the process's
trace buffer (:mod:`rabbitsync.django.tracelog`).
"""

from __future__ import annotations

import time

from rabbitsync.django import tracelog
from rabbitsync.events import CloudEvent, trace
from rabbitsync.events.headers import ATTEMPTS, EXCEPTION_MESSAGE
from rabbitsync.sidecar import routing
from rabbitsync.sidecar.metrics import Metrics
from rabbitsync.transport import IncomingMessage


def lag_seconds(event: CloudEvent, now: float | None = None) -> float:
    """Now minus the event's time (when its publisher committed it); never negative, whatever the clocks."""
    return max(0.0, (time.time() if now is None else now) - event.time.timestamp())


def applied(metrics: Metrics, kind: str, event: CloudEvent, queue: str) -> None:
    """``kind``: the inbox's outcome (``applied``, ``duplicate``, ``own``), as the trace names it too."""
    if kind == trace.APPLIED:
        metrics.end_to_end_lag.labels(event.type).observe(lag_seconds(event))
    tracelog.local().record(
        kind,
        event.id,
        type=event.type,
        subject=event.subject,
        queue=queue,
        source=event.source,
        event_time=event.time,
    )


def rerouted(message: IncomingMessage, queue: str, action: routing.Action) -> None:
    if isinstance(action, routing.Retry):
        details = {"attempt": action.attempt - 1, "error": trace.shorten(action.error)}
        kind = trace.RETRIED
    elif isinstance(action, routing.DeadLetter):
        error = action.headers.get(EXCEPTION_MESSAGE)
        details = {
            "attempt": action.headers.get(ATTEMPTS),
            "reason": action.reason,
            "error": trace.shorten(str(error)) if error is not None else None,
        }
        kind = trace.DEAD_LETTERED
    else:
        return
    tracelog.local().record(kind, message.message_id, type=message.type, queue=queue, **details)
