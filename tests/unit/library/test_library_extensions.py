"""CloudEvents extension attributes: accepted when the spec allows them, kept on the wire, refused otherwise."""

from __future__ import annotations

import json

import pytest

from rabbitsync.events import InvalidEvent, Origin, decode, encode, new_event

pytestmark = pytest.mark.unit

ORIGIN = Origin("east", "shop", "menu")
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def body(**extra: object) -> bytes:
    wire = json.loads(encode(new_event(type="menu.updated", origin=ORIGIN, data={"a": 1})))
    return json.dumps({**wire, **extra}).encode()


def test_an_event_carrying_traceparent_and_other_extensions_is_accepted_and_kept():
    event = decode(body(traceparent=TRACEPARENT, tracestate="rojo=00f067aa0ba902b7", partitionkey=7, sampled=True))
    assert event.traceparent == TRACEPARENT
    assert event.extensions == {
        "traceparent": TRACEPARENT,
        "tracestate": "rojo=00f067aa0ba902b7",
        "partitionkey": 7,
        "sampled": True,
    }
    again = json.loads(encode(event))  # what a retry, a dead letter or a replay carries on
    assert again["traceparent"] == TRACEPARENT and again["partitionkey"] == 7 and again["sampled"] is True
    assert decode(encode(event)) == event


def test_a_null_extension_is_absent():
    event = decode(body(traceparent=None))
    assert event.extensions == {} and event.traceparent is None
    assert "traceparent" not in json.loads(encode(event))


@pytest.mark.parametrize(
    "extra",
    [
        {"TraceParent": TRACEPARENT},  # upper case
        {"data_base64": "aGk="},  # binary data is not what we carry, and "_" is not allowed
        {"averyveryverylongextensionname": "x"},  # more than 20 characters
        {"": "x"},
        {"ratio": 0.5},  # no float type in CloudEvents
        {"nested": {"a": 1}},
        {"many": [1, 2]},
    ],
)
def test_an_extension_the_spec_does_not_allow_is_an_invalid_event(extra):
    with pytest.raises(InvalidEvent):
        decode(body(**extra))


def test_new_event_carries_extensions_and_refuses_core_names():
    event = new_event(type="menu.updated", origin=ORIGIN, data=None, extensions={"traceparent": TRACEPARENT})
    assert event.traceparent == TRACEPARENT
    with pytest.raises(InvalidEvent, match="core attributes: subject"):
        new_event(type="menu.updated", origin=ORIGIN, data=None, extensions={"subject": "x"})
