"""Backfill without a broker: snapshot keys, the control messages, and what the subscriber believes."""

from __future__ import annotations

import re

import pytest

from rabbitsync.amqp import rights_for
from rabbitsync.conventions import backfill_binding_key, backfill_key_type, backfill_routing_key, broker_username
from rabbitsync.events import InvalidEvent, Origin, new_event
from rabbitsync.events.backfill import (
    BackfillEnd,
    BackfillReport,
    BackfillRequest,
    decode_end,
    decode_report,
    decode_request,
    encode,
    new_run,
    run_prefix,
    snapshot_id,
)
from rabbitsync.sidecar import backfill, trust
from rabbitsync.topology import naming

pytestmark = pytest.mark.unit

QUEUE = "rabbitsync.west.shop.orders-menu"
MENU = Origin("east", "shop", "menu")


def _topic_match(binding: str, key: str) -> bool:
    """RabbitMQ's topic matching, for the keys these tests use (``#``: zero or more words)."""
    words = [re.escape(w) if w != "#" else r"[^.]+(?:\.[^.]+)*" for w in binding.split(".")]
    return re.fullmatch(r"\.".join(words), key) is not None


def test_a_snapshot_key_reaches_only_the_queue_it_names_and_says_its_type() -> None:
    key = backfill_routing_key("shop", "menu.item.CREATED", QUEUE)
    assert _topic_match(backfill_binding_key("shop", QUEUE), key)
    assert not _topic_match(backfill_binding_key("shop", QUEUE + "-2"), key)
    assert not _topic_match(backfill_binding_key("other", "rabbitsync.west.other.orders-menu"), key)
    assert backfill_key_type(key, "shop", QUEUE) == "menu.item.CREATED"
    assert backfill_key_type(key, "shop", QUEUE + "-2") is None
    assert backfill_key_type("shop.menu.item.CREATED", "shop", QUEUE) is None


def test_the_publishers_topic_permission_allows_its_types_to_any_queue_and_nothing_else() -> None:
    _, topic = rights_for(cluster="east", namespace="shop", exchange="ev", subscriptions=[], published=["A"])
    allowed = re.compile(topic.write)
    assert allowed.fullmatch(backfill_routing_key("shop", "A", QUEUE))
    assert not allowed.fullmatch(backfill_routing_key("shop", "B", QUEUE))
    assert not allowed.fullmatch(backfill_routing_key("other", "A", QUEUE))


def test_a_snapshot_whose_key_names_another_type_than_its_body_is_refused() -> None:
    event = new_event(type="B", origin=MENU, data={})
    backfill.check_addressed(event, backfill_routing_key("shop", "B", QUEUE), namespace="shop", queue=QUEUE)
    backfill.check_addressed(event, "shop.B", namespace="shop", queue=QUEUE)  # live: checked elsewhere
    backfill.check_addressed(event, QUEUE, namespace="shop", queue=QUEUE)  # back from a delay queue
    for key in (backfill_routing_key("shop", "A", QUEUE), backfill_routing_key("shop", "B", "another.queue")):
        with pytest.raises(trust.Untrusted) as refused:
            backfill.check_addressed(event, key, namespace="shop", queue=QUEUE)
        assert refused.value.reason == backfill.MISADDRESSED


def _end(source: str = MENU.source) -> bytes:
    return encode(BackfillEnd(request="r1", run="r1.abc", source=source, types=("A",), count=3))


def test_an_end_marker_is_believed_only_from_the_service_it_names_in_our_namespace() -> None:
    assert backfill.verify_end(_end(), broker_username(*MENU), namespace="shop").count == 3
    cases = {
        trust.UNAUTHENTICATED: (_end(), None, "shop"),
        trust.FORGED_SOURCE: (_end(), broker_username("east", "shop", "attacker"), "shop"),
        trust.FOREIGN_NAMESPACE: (_end(), broker_username(*MENU), "other"),
    }
    for reason, (body, publisher, namespace) in cases.items():
        with pytest.raises(trust.Untrusted) as refused:
            backfill.verify_end(body, publisher, namespace=namespace)
        assert refused.value.reason == reason
    with pytest.raises(trust.Untrusted):
        backfill.verify_end(_end("/clusters/east/namespaces/shop"), broker_username(*MENU), namespace="shop")
    with pytest.raises(InvalidEvent):
        backfill.verify_end(b"{}", broker_username(*MENU), namespace="shop")


def test_control_messages_round_trip_and_runs_never_share_ids() -> None:
    request = BackfillRequest(id="r1", namespace="shop", queue=QUEUE, types=("A", "B"))
    assert decode_request(encode(request)) == request
    assert decode_end(_end()).run == "r1.abc"
    with pytest.raises(InvalidEvent):
        decode_request(b'{"id": "r1"}')
    first, second = new_run(request), new_run(request)
    assert first != second
    assert snapshot_id(first, 12).startswith(run_prefix(first))
    assert not snapshot_id(second, 1).startswith(run_prefix(first))
    assert not snapshot_id(first, 12).startswith(run_prefix(first)[:-1] + "1")


def test_the_report_to_the_operator_goes_to_the_status_queue_and_says_complete_only_when_all_are_applied() -> None:
    end = BackfillEnd(request="r1", run="r1.abc", source=MENU.source, types=("M_UPDATED",), count=5)
    partial = backfill.report(QUEUE, end, 3)
    assert (partial.exchange, partial.routing_key) == ("", naming.backfill_status_queue(QUEUE))
    assert not partial.mandatory, "a backfill asked for without the operator has no status queue"
    assert decode_report(partial.body) == BackfillReport(request="r1", run="r1.abc", sent=5, applied=3, complete=False)
    assert decode_report(backfill.report(QUEUE, end, 5).body).complete
