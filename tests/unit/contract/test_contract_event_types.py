"""One event-type grammar: whatever can be subscribed to can be published and consumed, and nothing else.

The CRD schema (what the API server checks), the SyncSubscription model, the consumer contract and
the CloudEvent envelope are asked the same question for every value in one table.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from rabbitsync.api import SyncSubscriptionSpec, crd
from rabbitsync.conventions import EVENT_TYPE_MAX_LENGTH, EVENT_TYPE_PATTERN, is_event_type
from rabbitsync.events import InvalidEvent, Origin, new_event
from rabbitsync.topology import sidecar_contract

pytestmark = pytest.mark.unit

GOOD = [
    "a",
    "A",
    "RESTAURANT_CREATED",
    "restaurant.created",
    "a-b.c_d",
    "a.1",
    "a.b.c.d",
    "x" * 120,
    "a" + ".b" * 59,
]
BAD = [
    "",
    "a..b",
    "a.",
    ".a",
    "1abc",
    "_a",
    "-a",
    "a*",
    "a#",
    "a.*",
    "a.#",
    "a b",
    "a/b",
    "é",
    "a\n",
    "x" * 121,
    "x" * 255,
]


def _crd_items_schema() -> dict[str, Any]:
    (subscription,) = [c for c in crd.all_crds() if c["spec"]["names"]["kind"] == "SyncSubscription"]
    spec = subscription["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    items: dict[str, Any] = spec["properties"]["events"]["items"]
    return items


def _api_server_accepts(value: str) -> bool:
    # The API server's checks of one list item: lengths, then the pattern (Go regexp, whose `$` is the
    # end of the text: fullmatch gives Python the same meaning).
    schema = _crd_items_schema()
    return (
        schema["minLength"] <= len(value) <= schema["maxLength"] and re.fullmatch(schema["pattern"], value) is not None
    )


def _subscribable(value: str) -> bool:
    try:
        SyncSubscriptionSpec.model_validate({"service": "orders", "events": [value]})
    except ValidationError:
        return False
    return True


def _consumable(value: str) -> bool:
    try:
        sidecar_contract.build(
            cluster="east",
            namespace="shop",
            subscription="orders",
            events=[value],
            max_attempts=1,
            initial_backoff_ms=100,
            max_backoff_ms=100,
            dead_letter=True,
            prefetch=1,
        )
    except ValidationError:
        return False
    return True


def _publishable(value: str) -> bool:
    try:
        new_event(type=value, origin=Origin("east", "shop", "orders"), data={})
    except InvalidEvent:
        return False
    return True


def test_the_crd_schema_is_generated_from_the_one_grammar() -> None:
    schema = _crd_items_schema()
    assert (schema["pattern"], schema["maxLength"]) == (EVENT_TYPE_PATTERN, EVENT_TYPE_MAX_LENGTH)


@pytest.mark.parametrize("value", GOOD)
def test_a_good_type_is_accepted_everywhere(value: str) -> None:
    assert is_event_type(value)
    assert _api_server_accepts(value)
    assert _subscribable(value)
    assert _consumable(value)
    assert _publishable(value)


@pytest.mark.parametrize("value", BAD, ids=repr)
def test_a_bad_type_is_refused_everywhere(value: str) -> None:
    assert not is_event_type(value)
    assert not _api_server_accepts(value)
    assert not _subscribable(value)
    assert not _consumable(value)
    assert not _publishable(value)
