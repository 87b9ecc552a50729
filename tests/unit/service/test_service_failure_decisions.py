"""Pure decisions behind the consumer's failure semantics: which deliveries are refused unread, which
errors pause instead of spending an attempt, when a missing queue is tried again, what liveness says."""

from __future__ import annotations

import time

import pytest
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError

from rabbitsync.sidecar import admission, trust
from rabbitsync.sidecar.health import State
from rabbitsync.sidecar.outages import unavailable
from rabbitsync.sidecar.subscriptions import Subscriptions
from rabbitsync.topology import naming
from rabbitsync.topology import sidecar_contract as contract
from rabbitsync.transport import IncomingMessage, UndecodableValue

pytestmark = pytest.mark.unit

OWN, OTHER = "rabbitsync.west.shop.orders", "rabbitsync.east.shop.menu"


def spec(name: str) -> contract.ConsumerSpec:
    return contract.build(
        cluster="west",
        namespace="shop",
        subscription=name,
        events=["MENU_ITEM_CREATED"],
        max_attempts=3,
        initial_backoff_ms=100,
        max_backoff_ms=200,
        dead_letter=True,
        prefetch=10,
    )


@pytest.mark.parametrize(
    ("exchange", "user_id", "refused"),
    [
        ("rabbitsync.events", OTHER, False),  # routed by the bindings
        ("", OWN, False),  # our own retry back from an older release's delay queue, our own replay
        ("", OTHER, True),  # pushed straight into our queue by another service
        ("", None, True),
        (None, OTHER, False),  # unknown (not from a session): the other checks still apply
    ],
)
def test_only_our_own_user_may_come_in_through_the_default_exchange(exchange, user_id, refused):
    if refused:
        with pytest.raises(trust.Untrusted) as caught:
            trust.route(exchange, user_id, OWN, retries=naming.retries_exchange("west"))
        assert caught.value.reason == trust.DEFAULT_EXCHANGE
    else:
        trust.route(exchange, user_id, OWN, retries=naming.retries_exchange("west"))


def test_a_body_above_the_cap_is_refused_before_the_headers():
    message = IncomingMessage(tag=1, body=b"x" * 11, headers={"odd": UndecodableValue("undecodable double: nan")})
    with pytest.raises(admission.Refused) as caught:
        admission.check(message, max_body_bytes=10)
    assert caught.value.reason == admission.TOO_LARGE
    with pytest.raises(admission.Refused) as caught:
        admission.check(message, max_body_bytes=11)
    assert caught.value.reason == admission.UNDECODABLE_HEADER and "odd" in str(caught.value)
    admission.check(IncomingMessage(tag=1, body=b"{}", headers={"n": 1}), max_body_bytes=10)


@pytest.mark.parametrize(
    ("error", "infrastructure"),
    [
        (OperationalError("could not connect to server"), True),
        (InterfaceError("connection already closed"), True),
        (IntegrityError("duplicate key"), False),
        (DatabaseError("syntax error"), False),
        (ValueError("bad data"), False),
    ],
)
def test_only_an_unreachable_database_is_an_infrastructure_error(error, infrastructure):
    assert unavailable(error) is infrastructure


def test_a_missing_queue_is_retried_on_its_own_schedule_the_others_untouched():
    now = [100.0]
    subs = Subscriptions([spec("a"), spec("b")], cap=4.0, clock=lambda: now[0])
    assert [s.queue for s in subs.due()] == [spec("a").queue, spec("b").queue]
    subs.up(spec("a").queue)
    delays = [subs.down(spec("b").queue) for _ in range(6)]
    assert all(0.25 <= d <= 4.0 for d in delays) and max(delays) > 2.0  # grows, jittered, capped
    assert subs.consuming(spec("a").queue) and not subs.all_up()
    assert subs.due() == []
    now[0] += 4.0
    assert subs.due() == [spec("b")]
    subs.up(spec("b").queue)
    assert subs.all_up() and subs.down(spec("b").queue) <= 0.5  # a success starts the schedule over


def test_liveness_fails_past_the_handler_deadline_not_while_paused():
    state = State(handler_deadline=5.0)
    state.paused = "database unreachable: OperationalError"
    assert state.liveness() == (200, b"ok, consumption paused: database unreachable: OperationalError\n")
    state.handler_started = time.monotonic() - 4.0
    assert state.alive() and 4.0 <= state.handler_age() < 5.0
    state.handler_started = time.monotonic() - 6.0
    code, body = state.liveness()
    assert code == 503 and b"past its deadline" in body and not state.alive()
    state.handler_started = None
    assert state.handler_age() == 0.0 and state.alive()
    assert State(handler_deadline=0.0).overdue() is False
