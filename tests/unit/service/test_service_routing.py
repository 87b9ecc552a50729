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


def test_first_failures_go_to_the_shared_delay_exchange_of_their_step_addressed_to_the_main_queue():
    s = spec()
    first = routing.after_failure(s, {"trace": "t"}, RuntimeError("boom"))
    assert first == routing.Retry(
        queue="rabbitsync.east.@delay.quorum.1000ms",
        exchange="rabbitsync.east.@delay.quorum.1000ms",
        routing_key="rabbitsync.east.shop.menu",
        headers={"trace": "t", routing.ATTEMPT: 2},
        attempt=2,
    )
    second = routing.after_failure(s, first.headers, RuntimeError("boom"))
    assert isinstance(second, routing.Retry)
    assert (second.exchange, second.routing_key) == ("rabbitsync.east.@delay.quorum.1500ms", s.queue)  # capped
    assert second.queue == second.exchange
    assert second.headers[routing.ATTEMPT] == 3


def test_a_contract_of_an_older_release_still_retries_through_its_own_delay_queues():
    # How the sidecar reads an environment rendered before delay queues were shared.
    old = contract.ConsumerSpec.model_validate(spec().model_dump(by_alias=True, exclude={"retry_exchanges"}))
    first = routing.after_failure(old, None, RuntimeError("boom"))
    assert isinstance(first, routing.Retry)
    assert (first.queue, first.exchange, first.routing_key) == (
        "rabbitsync.east.shop.menu.retry.1000ms",
        "",
        "rabbitsync.east.shop.menu.retry.1000ms",
    )


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
