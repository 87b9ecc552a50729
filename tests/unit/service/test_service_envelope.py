"""The CloudEvent envelope: what we emit, and the strictness of what we accept."""

from __future__ import annotations

import json

import pytest

import rabbitsync.events as events
from rabbitsync.events import CloudEvent, InvalidEvent, Origin, decode, encode, message_properties, new_event

pytestmark = pytest.mark.unit

ORIGIN = Origin("east", "shop", "menu")


def valid() -> dict:
    return json.loads(encode(new_event(type="menu.updated", origin=ORIGIN, data={"a": [1, None]}, subject="m-1")))


def test_round_trip_keeps_every_attribute():
    event = new_event(type="menu.updated", origin=ORIGIN, data={"price": 3, "tags": ["x"]}, subject="m-1")
    assert decode(encode(event)) == event
    assert event.origin == ORIGIN
    assert event.source == "/clusters/east/namespaces/shop/services/menu"


def test_wire_form_is_structured_cloudevents():
    body = valid()
    assert body["specversion"] == "1.0"
    assert body["datacontenttype"] == "application/json"
    assert isinstance(body["rabbitsyncversion"], int)
    assert body["data"] == {"a": [1, None]}  # nulls inside data survive


def test_amqp_properties_mirror_the_envelope():
    event = new_event(type="menu.updated", origin=ORIGIN, data=None)
    props = message_properties(event)
    assert (props.message_id, props.type) == (event.id, event.type)
    assert props.timestamp == int(event.time.timestamp())
    assert props.content_type == "application/cloudevents+json"
    assert props.delivery_mode == 2


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.pop("id"),
        lambda b: b.pop("time"),
        lambda b: b.update(specversion="0.3"),
        lambda b: b.update(source="menu"),
        lambda b: b.update(source="/clusters/east/services/menu"),
        lambda b: b.update(type="menu.#"),
        lambda b: b.update(type="menu.*"),
        lambda b: b.update(rabbitsyncversion="17"),
        lambda b: b.update(rabbitsyncversion=-1),
        lambda b: b.update(time="2024-01-01T00:00:00"),  # naive: ambiguous across clusters
        lambda b: b.update(Unexpected="attribute"),  # an extension name must be lowercase (issue 12 accepts valid ones)
        lambda b: b.update(id=""),
    ],
)
def test_malformed_attributes_are_invalid_events(mutate):
    body = valid()
    mutate(body)
    with pytest.raises(InvalidEvent):
        decode(json.dumps(body).encode())


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"null", b"\xff\xfe", b'"just a string"'])
def test_garbage_bodies_are_invalid_events_not_crashes(body):
    with pytest.raises(InvalidEvent):
        decode(body)


def test_new_event_refuses_data_that_is_not_json():
    with pytest.raises(InvalidEvent):
        new_event(type="menu.updated", origin=ORIGIN, data={"when": object()})


def test_invalid_event_chains_the_cause():
    with pytest.raises(InvalidEvent) as info:
        decode(b"{")
    assert info.value.__cause__ is not None


def test_all_is_complete():
    public = {name for name in dir(events) if not name.startswith("_")}
    modules = {"backfill", "clock", "codec", "envelope", "errors", "headers", "ordering", "trace"}
    assert public - modules == set(events.__all__)


def test_model_is_immutable():
    event = new_event(type="menu.updated", origin=ORIGIN, data=None)
    with pytest.raises(Exception):  # noqa: B017 -- pydantic's frozen error type is an implementation detail
        event.id = "other"  # type: ignore[misc]
    assert isinstance(event, CloudEvent)
