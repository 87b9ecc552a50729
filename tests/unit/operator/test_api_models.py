"""The resource models: defaults, validation and camelCase wire names the controller relies on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

import rabbitsync.api as api
from rabbitsync.api import Condition, SyncBrokerSpec, SyncSubscription, SyncSubscriptionSpec, set_condition

pytestmark = pytest.mark.unit

T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_subscription_defaults() -> None:
    spec = SyncSubscriptionSpec.model_validate({"service": "orders", "events": ["restaurant.created"]})
    assert spec.broker == "default"
    assert spec.deletion_policy == "delete"
    assert spec.queue_type == "quorum"
    assert spec.dead_letter is True
    assert (spec.retry.max_attempts, spec.retry.initial_backoff_ms, spec.retry.max_backoff_ms) == (
        5,
        1000,
        60000,
    )


def test_subscription_parses_a_whole_object_with_camel_case_names() -> None:
    body = {
        "apiVersion": "rabbitsync.io/v1alpha1",
        "kind": "SyncSubscription",
        "metadata": {"name": "orders", "namespace": "shop", "generation": 2},
        "spec": {
            "service": "orders",
            "events": ["a", "b"],
            "retry": {"maxAttempts": 3, "initialBackoffMs": 500, "maxBackoffMs": 2000},
            "deadLetter": False,
            "queueType": "classic",
            "deletionPolicy": "retain",
        },
        "status": {"queue": "q", "queueDepth": 3, "conditions": []},
    }
    sub = SyncSubscription.model_validate(body)
    assert sub.spec.retry.max_attempts == 3
    assert sub.spec.queue_type == "classic"
    assert sub.status is not None and sub.status.queue_depth == 3
    assert sub.model_dump(by_alias=True, exclude_none=True)["spec"]["deletionPolicy"] == "retain"


@pytest.mark.parametrize(
    "spec",
    [
        {"service": "orders", "events": []},
        {"service": "Orders", "events": ["a"]},
        {"service": "orders", "events": ["1bad"]},
        {"service": "orders", "events": ["a b"]},
        {"service": "orders", "events": ["a"], "queueType": "stream"},
        {"service": "orders", "events": ["a"], "retry": {"maxAttempts": 0}},
        {"service": "orders", "events": ["a"], "prefetch": 0},
        {"service": "orders", "events": ["a"], "unknownField": 1},
    ],
)
def test_invalid_subscription_specs_are_refused(spec: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SyncSubscriptionSpec.model_validate(spec)


def test_broker_defaults_to_the_shared_exchange() -> None:
    spec = SyncBrokerSpec.model_validate({"secretRef": {"name": "rabbit"}})
    assert spec.exchange == "rabbitsync.events"
    assert spec.tls is None
    tls = SyncBrokerSpec.model_validate({"secretRef": {"name": "r"}, "tls": {"caSecretRef": {"name": "ca"}}})
    assert tls.tls is not None and tls.tls.ca_secret_ref.key == "ca.crt"


def _ready(status: str, reason: str = "Ok") -> Condition:
    return Condition(type="Ready", status=status, reason=reason)  # type: ignore[arg-type]


def test_set_condition_appends_a_new_type_with_now() -> None:
    [cond] = set_condition([], _ready("True"), T0)
    assert cond.last_transition_time == "2025-01-02T03:04:05Z"


def test_set_condition_keeps_time_when_status_unchanged() -> None:
    before = set_condition([], _ready("True"), T0)
    after = set_condition(before, _ready("True", "StillOk"), T0 + timedelta(minutes=5))
    assert after[0].reason == "StillOk"
    assert after[0].last_transition_time == before[0].last_transition_time


def test_set_condition_moves_time_when_status_flips_and_keeps_others() -> None:
    other = Condition(type="BrokerReachable", status="True", reason="Connected")
    before = set_condition([other], _ready("True"), T0)
    after = set_condition(before, _ready("False", "Down"), T0 + timedelta(minutes=5))
    assert [c.type for c in after] == ["BrokerReachable", "Ready"]
    assert after[1].last_transition_time == "2025-01-02T03:09:05Z"
    assert before[1].status == "True", "the input list is not modified"


def test_all_is_complete() -> None:
    public = {name for name in vars(api) if not name.startswith("_")}
    modules = {"conditions", "meta", "syncbroker", "syncsubscription", "syncpublication", "clustersyncbroker", "crd"}
    modules |= {"annotations", "service"}
    assert public - modules == set(api.__all__)
