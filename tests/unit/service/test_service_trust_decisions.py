"""Who may have an event applied: the broker-verified publisher, its source, namespace and type."""

from __future__ import annotations

import pytest

from rabbitsync.conventions import broker_username
from rabbitsync.events import CloudEvent, Origin, new_event
from rabbitsync.events.headers import PUBLISHER, vouched_publisher, with_publisher
from rabbitsync.sidecar import routing, trust
from rabbitsync.topology import naming
from rabbitsync.topology import sidecar_contract as contract

pytestmark = pytest.mark.unit

MENU = Origin("east", "shop", "menu")
MENU_USER = broker_username(*MENU)
ATTACKER_USER = broker_username("east", "shop", "attacker")
OWN_USER = broker_username("west", "shop", "orders")
"""The receiving sidecar's own broker user: the one its reroutes carry."""
RETRIES = naming.retries_exchange("west")
"""The receiving sidecar's cluster's retries exchange: how a retry comes back to its queue."""

SPEC = contract.build(
    cluster="west",
    namespace="shop",
    subscription="orders-menu",
    events=["MENU_ITEM_CREATED"],
    max_attempts=3,
    initial_backoff_ms=100,
    max_backoff_ms=200,
    dead_letter=True,
    prefetch=10,
)


def event(origin: Origin = MENU, type: str = "MENU_ITEM_CREATED") -> CloudEvent:
    return new_event(type=type, origin=origin, data={}, subject="item-1")


def verdict(event: CloudEvent, user_id: str | None, headers: dict[str, object] | None = None) -> str | None:
    """The refusal reason for a delivery, ``None`` when it may be applied."""
    publisher = vouched_publisher(user_id, headers or {}, OWN_USER)
    try:
        trust.check(event, publisher, events=SPEC.events, namespace="shop")
    except trust.Untrusted as e:
        return e.reason
    return None


def test_an_event_sent_by_the_user_of_its_source_is_applied() -> None:
    assert verdict(event(), MENU_USER) is None


def test_the_same_service_in_the_other_cluster_is_a_different_user() -> None:
    twin = Origin("west", "shop", "menu")
    assert verdict(event(twin), broker_username(*twin)) is None
    assert verdict(event(twin), MENU_USER) == trust.FORGED_SOURCE


@pytest.mark.parametrize(
    ("user_id", "reason"),
    [
        (None, trust.UNAUTHENTICATED),
        (ATTACKER_USER, trust.FORGED_SOURCE),
        ("guest", trust.FORGED_SOURCE),
        (OWN_USER, trust.FORGED_SOURCE),  # our own user without a header is us, not menu
    ],
)
def test_a_source_not_backed_by_its_user_is_refused(user_id: str | None, reason: str) -> None:
    assert verdict(event(), user_id) == reason


def test_an_event_from_another_namespace_is_refused_even_when_authentic() -> None:
    staging = Origin("east", "staging", "menu")
    assert verdict(event(staging), broker_username(*staging)) == trust.FOREIGN_NAMESPACE


def test_a_type_the_subscription_does_not_list_is_refused_even_when_authentic() -> None:
    assert verdict(event(type="MENU_ITEM_DELETED"), MENU_USER) == trust.UNSUBSCRIBED_TYPE


def test_a_retry_coming_back_from_our_own_delay_queue_keeps_its_original_publisher() -> None:
    first = vouched_publisher(MENU_USER, {}, OWN_USER)
    retry = routing.after_failure(SPEC, with_publisher({}, first), RuntimeError("db busy"))
    assert isinstance(retry, routing.Retry)
    assert retry.headers[PUBLISHER] == MENU_USER
    # The copy was published by the sidecar itself: the broker shows our user_id on the way back.
    assert verdict(event(), OWN_USER, retry.headers) is None


def delivered(exchange: str | None, user_id: str | None, event: CloudEvent, headers: dict[str, object]) -> str | None:
    """The refusal reason for a delivery through ``exchange``, as the sidecar checks it before the body."""
    try:
        trust.route(exchange, user_id, OWN_USER, retries=RETRIES)
    except trust.Untrusted as e:
        return e.reason
    return verdict(event, user_id, headers)


def test_our_own_retry_coming_back_through_the_retries_exchange_is_applied() -> None:
    retry = routing.after_failure(SPEC, with_publisher({}, MENU_USER), RuntimeError("db busy"))
    assert isinstance(retry, routing.Retry)
    assert (retry.exchange, retry.routing_key) == (naming.delay_name("west", "quorum", 100), SPEC.queue)
    assert delivered(RETRIES, OWN_USER, event(), retry.headers) is None


@pytest.mark.parametrize(
    ("origin", "user_id", "by_the_body"),
    [
        # A service of the namespace sending its own genuine event, of a type its topic permissions
        # would not let it publish on the events exchange: the checks of the body alone apply it.
        (Origin("east", "shop", "attacker"), ATTACKER_USER, None),
        (MENU, MENU_USER, None),  # genuine, but addressed to our queue by its publisher, not by our bindings
        (MENU, None, trust.UNAUTHENTICATED),
    ],
)
def test_a_message_another_user_put_into_a_delay_exchange_is_refused_as_it_comes_back(
    origin: Origin, user_id: str | None, by_the_body: str | None
) -> None:
    # Any service may publish into the cluster's delay exchanges (for its own retries), with any
    # routing key: the broker dead-letters the copy into our queue with the publisher's user_id.
    headers: dict[str, object] = {PUBLISHER: MENU_USER, routing.ATTEMPT: 2}  # claims are no help either
    assert verdict(event(origin), user_id, headers) == by_the_body
    assert delivered(RETRIES, user_id, event(origin), headers) == trust.FOREIGN_RETRY


def test_a_publisher_header_from_any_other_user_is_ignored() -> None:
    forged = {PUBLISHER: MENU_USER}
    assert vouched_publisher(ATTACKER_USER, forged, OWN_USER) == ATTACKER_USER
    assert verdict(event(), ATTACKER_USER, forged) == trust.FORGED_SOURCE
    assert vouched_publisher(None, forged, OWN_USER) is None
    assert verdict(event(), None, forged) == trust.UNAUTHENTICATED


def test_a_forged_header_cannot_be_laundered_through_our_reroutes() -> None:
    # The attacker pushes a copy claiming menu; it fails (say, into the dead-letter queue) and is
    # replayed later by the service's own credentials: the header now names the attacker.
    forged = {PUBLISHER: MENU_USER, "x-other": "kept"}
    publisher = vouched_publisher(ATTACKER_USER, forged, OWN_USER)
    action = routing.poison(SPEC, with_publisher(forged, publisher), ValueError("x"))
    assert isinstance(action, routing.DeadLetter)
    assert action.headers[PUBLISHER] == ATTACKER_USER and action.headers["x-other"] == "kept"
    assert verdict(event(), OWN_USER, action.headers) == trust.FORGED_SOURCE


def test_an_unauthenticated_message_carries_no_publisher_header_onwards() -> None:
    assert with_publisher({PUBLISHER: MENU_USER, "a": 1}, None) == {"a": 1}


def test_a_header_as_bytes_is_read_as_text() -> None:
    assert vouched_publisher(OWN_USER, {PUBLISHER: MENU_USER.encode()}, OWN_USER) == MENU_USER


def test_a_refusal_is_dead_lettered_at_once_with_its_reason_and_never_retried() -> None:
    error = trust.Untrusted(trust.FORGED_SOURCE, "published by 'x', but its source ... is 'y'")
    action = routing.poison(SPEC, {routing.ATTEMPT: 2}, error, reason=error.reason)
    assert isinstance(action, routing.DeadLetter)
    assert action.queue == SPEC.dead_letter_queue
    assert action.reason == action.headers[routing.REASON] == "forged-source"
    assert action.headers[routing.EXCEPTION_TYPE] == "rabbitsync.sidecar.trust.Untrusted"
    assert action.headers[routing.ATTEMPTS] == 2
