"""W3C trace context across an event: the publisher's ``traceparent`` reaches the handler, and on.

An event published while a trace is active carries it in the ``traceparent`` extension attribute
(CloudEvents distributed-tracing extension, what Dapr and OpenTelemetry's instrumentations use).
While a handler runs, that event's trace is the active one, so whatever the handler publishes joins
the same trace. Without OpenTelemetry the trace is a context variable holding the incoming
``traceparent``. With ``opentelemetry-api`` installed (optional, never required), the active span is
the source: publishing takes its context, and each handler runs in a consumer span whose parent is
the event's ``traceparent``, so a configured exporter shows publish and apply as one trace.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Iterator
from typing import Any

from rabbitsync.events import CloudEvent

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("rabbitsync_traceparent", default=None)

try:  # optional: the library never needs it
    import opentelemetry.propagate
    import opentelemetry.trace

    _OTEL = True
except ImportError:  # pragma: no cover - depends on the environment
    _OTEL = False


def current_traceparent() -> str | None:
    """The trace context an event published now should carry, if any trace is active."""
    if _OTEL:
        carrier: dict[str, str] = {}
        opentelemetry.propagate.inject(carrier)
        if valid(carrier.get("traceparent")):
            return carrier["traceparent"]
    return _current.get()


def extensions() -> dict[str, str]:
    """The extension attributes ``publish()`` adds: the active ``traceparent``, when there is one."""
    parent = current_traceparent()
    return {"traceparent": parent} if parent else {}


@contextlib.contextmanager
def handling(event: CloudEvent) -> Iterator[None]:
    """Make ``event``'s trace the active one while its handlers run."""
    parent = event.traceparent if valid(event.traceparent) else None
    token = _current.set(parent)
    try:
        with _span(event, parent):
            yield
    finally:
        _current.reset(token)


def valid(traceparent: str | None) -> bool:
    """Is it a W3C ``traceparent`` (version-traceid-parentid-flags, lowercase hex)?"""
    return traceparent is not None and _TRACEPARENT.match(traceparent) is not None


def _span(event: CloudEvent, parent: str | None) -> contextlib.AbstractContextManager[Any]:
    if not _OTEL:
        return contextlib.nullcontext()
    context = opentelemetry.propagate.extract({"traceparent": parent}) if parent else None
    tracer = opentelemetry.trace.get_tracer("rabbitsync")
    span: contextlib.AbstractContextManager[Any] = tracer.start_as_current_span(
        f"{event.type} process",
        context=context,
        kind=opentelemetry.trace.SpanKind.CONSUMER,
        attributes={
            "messaging.system": "rabbitmq",
            "messaging.message.id": event.id,
            "cloudevents.event_type": event.type,
        },
    )
    return span
