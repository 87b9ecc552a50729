"""Dead letters: describing both kinds, and passes that never hand a message back (fakes, no broker)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from clifakes import Done, FakeQueues

from rabbitsync.deadletters import describe, letters, run_pass
from rabbitsync.events.headers import PUBLISHER
from rabbitsync.sidecar import routing
from rabbitsync.transport import BrokerUnreachable, IncomingMessage

DLQ = "rabbitsync.east.ns.sub.dlq"
MAIN = "rabbitsync.east.ns.sub"
BODY = b'{"id": "e1", "type": "order.placed", "subject": "order-7", "time": "2026-11-29T10:00:00Z"}'


def sidecar_letter(event_id: str, event_type: str = "order.placed", reason: str = "poison") -> IncomingMessage:
    headers = {
        routing.REASON: reason,
        routing.EXCEPTION_TYPE: "rabbitsync.django.inbox.NoHandler",
        routing.EXCEPTION_MESSAGE: "no handler",
        routing.ATTEMPTS: 1,
        routing.QUEUE: MAIN,
        routing.ATTEMPT: 1,
    }
    return IncomingMessage(tag=0, body=BODY, headers=headers, message_id=event_id, type=event_type, timestamp=1)


def broker_letter(event_id: str) -> IncomingMessage:
    death = [{"queue": MAIN, "reason": "rejected", "count": 1, "time": datetime(2026, 11, 29, 11, 0, tzinfo=UTC)}]
    headers = {"x-death": death, "x-first-death-queue": "other", "x-delivery-count": 3}
    return IncomingMessage(
        tag=0, body=b"not json", headers=headers, message_id=event_id, type="t", timestamp=1_800_000_000
    )


def test_a_sidecar_letter_says_why_when_what_and_where():
    letter = describe(sidecar_letter("e1"), DLQ)
    assert (letter.reason, letter.attempts, letter.queue, letter.dead_lettered_by) == ("poison", 1, MAIN, "sidecar")
    assert (letter.subject, letter.time, letter.type) == ("order-7", "2026-11-29T10:00:00Z", "order.placed")


def test_a_broker_letter_takes_its_queue_and_reason_from_the_latest_death():
    letter = describe(broker_letter("b1"), DLQ)
    assert (letter.queue, letter.reason, letter.dead_lettered_by) == (MAIN, "rejected", "broker")
    assert letter.dead_lettered_at == "2026-11-29T11:00:00Z"
    assert letter.time == "2027-01-15T08:00:00Z"  # no body time: the AMQP timestamp


def test_without_any_header_the_queue_is_the_dlq_owner():
    bare = IncomingMessage(tag=0, body=b"", headers={}, message_id="x")
    assert describe(bare, DLQ).queue == MAIN


def fresh(*messages: IncomingMessage) -> FakeQueues:
    return FakeQueues(queues={DLQ: list(messages), MAIN: []})


def test_a_look_leaves_every_letter_in_order_with_no_counter_and_never_returns_one():
    broker = fresh(sidecar_letter("e1"), broker_letter("b1"), sidecar_letter("e2"))
    result = run_pass(broker, broker, DLQ, 3)
    assert [lt.message_id for lt in result.letters] == ["e1", "b1", "e2"]
    assert [m.message_id for m in broker.queues[DLQ]] == ["e1", "b1", "e2"]
    assert not broker.unacked
    assert all("x-delivery-count" not in m.headers for m in broker.queues[DLQ])
    # The broker's own dead letter keeps where it came from in our headers too.
    assert broker.queues[DLQ][1].headers[letters.QUEUE] == MAIN


def test_replay_sends_the_selected_back_as_first_attempts_and_keeps_the_rest():
    broker = fresh(sidecar_letter("e1"), broker_letter("b1"), sidecar_letter("e2", "order.cancelled"))
    result = run_pass(broker, broker, DLQ, 3, replay=lambda lt: lt.message_id in ("e2", "b1"))
    assert [lt.message_id for lt in result.replayed] == ["b1", "e2"]
    assert [m.message_id for m in broker.queues[MAIN]] == ["b1", "e2"]
    assert [m.message_id for m in broker.queues[DLQ]] == ["e1"]
    sent = broker.queues[MAIN][1].headers
    assert sent[letters.ATTEMPT] == 1 and letters.REASON not in sent and "x-death" not in broker.queues[MAIN][0].headers


def test_a_replay_the_broker_refuses_keeps_the_letter():
    broker = FakeQueues(queues={DLQ: [sidecar_letter("e1")]})  # the subscription's queue is gone
    result = run_pass(broker, broker, DLQ, 1, replay=lambda lt: True)
    assert not result.replayed and [lt.message_id for lt, _ in result.failed] == ["e1"]
    assert [m.message_id for m in broker.queues[DLQ]] == ["e1"]


def test_purge_takes_only_the_count_agreed_to():
    broker = fresh(sidecar_letter("e1"), sidecar_letter("e2"), sidecar_letter("late"))
    assert run_pass(broker, broker, DLQ, 2, purge=True).purged == 2
    assert [m.message_id for m in broker.queues[DLQ]] == ["late"]


def test_a_copy_the_broker_does_not_confirm_leaves_the_whole_batch_unacked():
    broker = fresh(sidecar_letter("e1"), sidecar_letter("e2"))

    class SecondRefused(FakeQueues):
        def submit(self, messages):
            self.next_tag += 1
            return Done(BrokerUnreachable("connection lost") if self.next_tag > 1001 else None)

    with pytest.raises(BrokerUnreachable, match="connection lost"):
        run_pass(broker, SecondRefused(), DLQ, 2)
    # Both still held, e1's confirmed copy notwithstanding: closing the channel hands them back.
    assert sorted(m.message_id for m in broker.unacked.values()) == ["e1", "e2"]


def test_a_replay_believes_a_publisher_header_only_on_copies_the_replaying_user_made():
    """A forged letter (another service put it in the DLQ through the default exchange, claiming a
    victim as publisher) must not come back vouched for by the user who replays it."""
    forged = sidecar_letter("forged")
    forged = IncomingMessage(**{**vars(forged), "user_id": "rabbitsync.east.ns.mallory"})
    forged.headers[PUBLISHER] = "rabbitsync.east.ns.victim"
    ours = sidecar_letter("ours")
    ours = IncomingMessage(**{**vars(ours), "user_id": "rabbitsync.east.ns.sub"})
    ours.headers[PUBLISHER] = "rabbitsync.east.ns.menu"
    broker = fresh(forged, ours)
    broker.user = "rabbitsync.east.ns.sub"
    run_pass(broker, broker, DLQ, 2, replay=lambda lt: True, user=broker.user)
    sent = {m.message_id: m.headers[PUBLISHER] for m in broker.queues[MAIN]}
    assert sent == {"forged": "rabbitsync.east.ns.mallory", "ours": "rabbitsync.east.ns.menu"}
