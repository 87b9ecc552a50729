"""Where failed and poison deliveries go, and what they carry."""

from __future__ import annotations

import pytest

from rabbitsync.sidecar import routing
from rabbitsync.topology import sidecar_contract as contract

pytestmark = pytest.mark.unit


def spec(max_attempts=3, dead_letter=True):
    return contract.build(
        cluster="east",
        namespace="shop",
        subscription="menu",
        events=["menu.updated"],
        max_attempts=max_attempts,
        initial_backoff_ms=1000,
        max_backoff_ms=1500,
        dead_letter=dead_letter,
        prefetch=10,
    )


@pytest.mark.parametrize(
    ("headers", "attempt"),
    [
        (None, 1),
        ({}, 1),
        ({routing.ATTEMPT: 2}, 2),
        ({routing.ATTEMPT: "3"}, 3),
        ({routing.ATTEMPT: "x"}, 1),
        ({routing.ATTEMPT: 0}, 1),
        ({routing.ATTEMPT: None}, 1),
    ],
)
def test_attempt_of(headers, attempt):
    assert routing.attempt_of(headers) == attempt


def test_first_failures_go_to_the_delay_queue_of_their_attempt():
    s = spec()
    first = routing.after_failure(s, {"trace": "t"}, RuntimeError("boom"))
    assert first == routing.Retry(
        queue=f"{s.queue}.retry.1000ms", headers={"trace": "t", routing.ATTEMPT: 2}, attempt=2
    )
    second = routing.after_failure(s, first.headers, RuntimeError("boom"))
    assert second.queue == f"{s.queue}.retry.1500ms"  # capped backoff
    assert second.headers[routing.ATTEMPT] == 3


def test_last_attempt_is_dead_lettered_with_the_reason():
    s = spec()
    action = routing.after_failure(s, {routing.ATTEMPT: 3, "x-death": [{}]}, KeyError("price"))
    assert isinstance(action, routing.DeadLetter)
    assert action.queue == s.dead_letter_queue
    assert action.headers[routing.REASON] == routing.FAILED
    assert action.headers[routing.EXCEPTION_TYPE] == "builtins.KeyError"
    assert action.headers[routing.EXCEPTION_MESSAGE] == "'price'"
    assert action.headers[routing.ATTEMPTS] == 3
    assert action.headers[routing.QUEUE] == s.queue
    assert "x-death" not in action.headers


def test_single_attempt_subscription_never_retries():
    assert isinstance(routing.after_failure(spec(max_attempts=1), None, ValueError()), routing.DeadLetter)


def test_poison_skips_the_retries():
    action = routing.poison(spec(), None, ValueError("bad json"))
    assert isinstance(action, routing.DeadLetter)
    assert action.headers[routing.REASON] == routing.POISON
    assert action.headers[routing.ATTEMPTS] == 1


def test_without_dead_lettering_failures_are_discarded():
    assert routing.after_failure(spec(dead_letter=False), {routing.ATTEMPT: 3}, ValueError()) == routing.Discard(
        reason=routing.FAILED
    )


def test_long_exception_messages_are_truncated():
    action = routing.poison(spec(), None, ValueError("x" * 5000))
    assert len(action.headers[routing.EXCEPTION_MESSAGE]) == 1000
