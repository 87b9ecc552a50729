"""Trace context: the event's traceparent is the active one while its handlers run, and what they publish."""

from __future__ import annotations

import pytest

from rabbitsync.django import tracing
from rabbitsync.events import Origin, new_event

pytestmark = pytest.mark.unit

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def event(**extensions: str):
    return new_event(type="menu.updated", origin=Origin("east", "shop", "menu"), data=None, extensions=extensions)


def test_the_event_trace_is_active_while_handling_and_only_then():
    assert tracing.extensions() == {}
    with tracing.handling(event(traceparent=TRACEPARENT)):
        assert tracing.current_traceparent() == TRACEPARENT
        assert tracing.extensions() == {"traceparent": TRACEPARENT}
    assert tracing.current_traceparent() is None


def test_an_event_without_a_trace_or_with_a_malformed_one_starts_none():
    with tracing.handling(event()):
        assert tracing.extensions() == {}
    with tracing.handling(event(traceparent="not-a-trace")):
        assert tracing.extensions() == {}


@pytest.mark.parametrize(
    ("value", "ok"),
    [(TRACEPARENT, True), (TRACEPARENT.upper(), False), ("00-abc-def-01", False), (None, False)],
)
def test_valid_traceparent(value, ok):
    assert tracing.valid(value) is ok
