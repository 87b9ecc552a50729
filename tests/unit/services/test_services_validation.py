"""The request-body checks the example services share (``services/common/validation.py``): pure Python."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[3] / "services"
if str(SERVICES) not in sys.path:
    sys.path.insert(0, str(SERVICES))

from common.events import MENU_ITEM_EVENTS, ORDER_EVENTS, RESTAURANT_EVENTS, is_deletion  # noqa: E402
from common.validation import Field, Invalid, validate  # noqa: E402

FIELDS = {
    "name": Field(str, required=True, max_length=5, blank=False),
    "email": Field("email", default=""),
    "count": Field(int, default=1, min_value=1, max_value=3),
    "ref": Field("uuid"),
    "on": Field(bool, default=True),
}


def errors(body, **kwargs):
    with pytest.raises(Invalid) as info:
        validate(body, FIELDS, **kwargs)
    return info.value.errors


def test_defaults_fill_what_is_absent_and_strings_are_stripped():
    assert validate({"name": " ab "}, FIELDS) == {"name": "ab", "email": "", "count": 1, "ref": None, "on": True}


def test_uuid_strings_become_uuids():
    ref = uuid.uuid4()
    assert validate({"name": "a", "ref": str(ref)}, FIELDS)["ref"] == ref


def test_every_problem_is_reported_at_once_by_field():
    assert errors({"email": "x@", "count": 9, "ref": "nope", "on": 1, "extra": 0}) == {
        "extra": "unknown field",
        "name": "this field is required",
        "email": "must be an email address",
        "count": "must be at most 3",
        "ref": "must be a UUID string",
        "on": "must be true or false",
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": True}, {"name": "must be a string"}),
        ({"name": "   "}, {"name": "must not be blank"}),
        ({"name": "toolong"}, {"name": "must be at most 5 characters"}),
        ({"name": "a", "count": True}, {"count": "must be an integer"}),  # bool is not an int in an API
        ({"name": "a", "count": 1.0}, {"count": "must be an integer"}),
        ({"name": "a", "count": 0}, {"count": "must be at least 1"}),
        ({"name": "a", "ref": 5}, {"ref": "must be a UUID string"}),
    ],
)
def test_types_and_bounds(body, expected):
    assert errors(body) == expected


@pytest.mark.parametrize("body", [[], "x", None, 3])
def test_the_body_must_be_an_object(body):
    assert errors(body) == {"body": "must be a JSON object"}


def test_partial_checks_only_what_is_present_and_needs_something():
    assert validate({"count": 2}, FIELDS, partial=True) == {"count": 2}
    assert errors({}, partial=True) == {"body": "no field to change"}
    assert errors({"count": 0}, partial=True) == {"count": "must be at least 1"}


def test_event_types_are_routing_keys_and_deletions_are_recognised():
    import re

    from rabbitsync.conventions import EVENT_TYPE_PATTERN

    for event_type in (*RESTAURANT_EVENTS, *MENU_ITEM_EVENTS, *ORDER_EVENTS):
        assert re.match(EVENT_TYPE_PATTERN, event_type)
        assert is_deletion(event_type) == event_type.endswith("_DELETED")
