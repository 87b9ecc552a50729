"""Issue 10, the publishing side: nothing the relay sends vanishes, nothing blocks the outbox, the relay
thread outlives any error, and a forged last-writer-wins version is dead-lettered, not believed.
Real Django on a real database; a real broker wherever one is involved."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from conftest import NAMESPACE, PUBLISHING, channel, make_spec, user_url, wait_until
from django.db import InterfaceError, transaction
from django.test import override_settings

from rabbitsync.events import Origin, encode, new_event
from rabbitsync.transport import BrokerError, BrokerUnreachable, OutgoingMessage

pytestmark = pytest.mark.integration

OTHER = Origin("c2", NAMESPACE, "publisher")


def _overrides(**extra: object) -> dict[str, object]:
    from rabbitsync.django.conf import get_settings

    current = {k.upper(): v for k, v in get_settings().__dict__.items()}
    return current | {"RELAY_IN_PROCESS": False} | {k.upper(): v for k, v in extra.items()}


def _rows(count: int, data: object = None) -> list[int]:
    from rabbitsync.django.models import OutboxMessage

    events = [new_event(type="svc.effect", origin=PUBLISHING, data=data or {"n": n}) for n in range(count)]
    rows = OutboxMessage.objects.bulk_create(OutboxMessage(event_id=e.id, type=e.type, body=encode(e)) for e in events)
    return [row.pk for row in rows]


class FakePublisher:
    """Confirms everything, or reports the broker away while ``away`` is set."""

    def __init__(self) -> None:
        self.away = threading.Event()
        self.sent: list[str] = []

    def start(self) -> FakePublisher:
        return self

    def close(self) -> None:
        pass

    def publish_each(self, messages: Sequence[OutgoingMessage], timeout: float) -> list[BrokerError | None]:
        if self.away.is_set():
            return [BrokerUnreachable("broker away") for _ in messages]
        self.sent += [m.properties.message_id for m in messages]
        return [None for _ in messages]

    def publish(self, messages: Sequence[OutgoingMessage], timeout: float) -> None:  # the relay before issue 10
        for outcome in self.publish_each(messages, timeout):
            if outcome is not None:
                raise outcome


@pytest.fixture
def outbox(django_project, database):
    from rabbitsync.django.models import OutboxMessage

    OutboxMessage.objects.all().delete()
    yield OutboxMessage
    OutboxMessage.objects.all().delete()


def test_the_relay_thread_outlives_an_interface_error_and_any_other_error(outbox, monkeypatch):
    """Django's InterfaceError is no DatabaseError: it used to kill the thread silently."""
    from rabbitsync.django import leases, relay
    from rabbitsync.django.conf import get_settings

    real_claim = leases.claim
    failures = [InterfaceError("connection already closed"), RuntimeError("a bug of ours")]

    def claim(*args, **kwargs):
        if failures:
            raise failures.pop(0)
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(leases, "claim", claim)
    publisher = FakePublisher()
    with override_settings(RABBITSYNC=_overrides(reconnect_max_delay=0.3)):
        worker = relay.OutboxRelay(get_settings(), sweep=False, publisher=publisher).start()  # type: ignore[arg-type]
        try:
            ids = _rows(3)
            worker.notify(ids)
            wait_until(lambda: not failures, 5, "both errors raised in the relay thread")
            wait_until(lambda: len(publisher.sent) == 3, 5, "the rows sent after the errors")
            assert worker.alive(), "the relay thread died"
        finally:
            worker.stop()
    assert outbox.objects.filter(sent_at__isnull=True).count() == 0


def test_row_ids_waiting_for_the_relay_are_bounded_and_none_is_lost(outbox):
    """While the broker is away, the fast path's ids are capped; the forgotten rows go out by a sweep."""
    from rabbitsync.django import relay
    from rabbitsync.django.conf import get_settings

    publisher = FakePublisher()
    publisher.away.set()
    with override_settings(RABBITSYNC=_overrides(reconnect_max_delay=0.2, relay_pending_max=50)):
        worker = relay.OutboxRelay(get_settings(), sweep=False, publisher=publisher).start()  # type: ignore[arg-type]
        try:
            ids = _rows(400)
            for start in range(0, 400, 20):
                worker.notify(ids[start : start + 20])
                assert len(worker._pending) <= 50, "the pending ids grow without bound"
            publisher.away.clear()
            wait_until(lambda: len(publisher.sent) == 400, 10, "every row, remembered or not, sent")
        finally:
            worker.stop()
    assert outbox.objects.filter(sent_at__isnull=True).count() == 0


def test_an_oversized_row_is_parked_with_its_reason_and_the_rows_behind_it_go_on(service, uid):
    from rabbitsync.django import relay
    from rabbitsync.django.conf import get_settings
    from rabbitsync.django.models import OutboxMessage

    spec = service.declare(make_spec(uid, ["svc.effect"], name="observe"))
    ids = _rows(2)
    [big] = _rows(1, data={"blob": "x" * 5000})
    ids += _rows(2)
    with override_settings(RABBITSYNC=_overrides(relay_max_message_bytes=4000)):
        worker = relay.OutboxRelay(get_settings(), sweep=False).start()
        try:
            assert worker.drain() == 4
        finally:
            worker.stop()
    assert service.depth(spec.queue) == 4
    row = OutboxMessage.objects.get(pk=big)
    assert row.sent_at is None and row.parked_at is not None and "too large" in row.park_reason
    assert relay.parked() == 1 and relay.backlog() == 0


def test_a_row_the_broker_refuses_backs_off_alone_and_is_parked_after_the_limit(service, uid, broker):
    """The broker's own max_message_size: it closes the channel on the row, failing its whole batch.
    The relay finds the culprit by sending the batch's rows one by one, and the others go on."""
    from harness import rabbitmq
    from rabbitsync.django import relay
    from rabbitsync.django.conf import get_settings
    from rabbitsync.django.models import OutboxMessage

    spec = service.declare(make_spec(uid, ["svc.effect"], name="observe"))
    ids = _rows(3)
    [big] = _rows(1, data={"blob": "x" * 300_000})
    ids += _rows(3)
    limit = "application:set_env(rabbit, max_message_size, {})."
    rabbitmq.ctl(broker.info, "eval", limit.format(200_000))
    try:
        with override_settings(RABBITSYNC=_overrides(relay_max_attempts=2, relay_retry_max_delay=0.5)):
            worker = relay.OutboxRelay(get_settings(), sweep=False).start()
            try:
                assert worker.drain() == 6, "the rows around the refused one were held up"
                row = OutboxMessage.objects.get(pk=big)
                assert row.parked_at is None and row.publish_attempts == 1 and row.next_attempt_at is not None
                wait_until(lambda: worker.drain() == 0 and relay.parked() == 1, 15, "the row parked at the limit")
            finally:
                worker.stop()
    finally:
        rabbitmq.ctl(broker.info, "eval", limit.format(128 * 1024 * 1024))
    # Rows confirmed by the broker just before it closed the channel are sent again: at least once.
    sent = {props.message_id for props, _ in service.take(spec.queue)}
    assert sent == set(OutboxMessage.objects.filter(pk__in=ids).values_list("event_id", flat=True))
    row = OutboxMessage.objects.get(pk=big)
    assert row.publish_attempts == 2 and "refused 2 times" in row.park_reason and row.sent_at is None


def test_a_returned_event_is_kept_and_retried_not_marked_sent(service, uid):
    """No alternate exchange on this exchange (the operator's policy missing): the mandatory
    publish comes back, the row stays unsent, and it goes out once a queue is bound."""
    from rabbitsync.django import relay
    from rabbitsync.django.conf import get_settings
    from rabbitsync.django.models import OutboxMessage

    bare = f"{service.exchange}.bare"
    with channel(service.amqp_url) as ch:
        ch.exchange_declare(bare, "topic", durable=True)
    try:
        [pk] = _rows(1)
        with override_settings(RABBITSYNC=_overrides(exchange=bare, relay_retry_max_delay=1.0)):
            worker = relay.OutboxRelay(get_settings(), sweep=True).start()
            try:
                wait_until(lambda: worker.returned_total >= 1, 10, "the publish returned")
                row = OutboxMessage.objects.get(pk=pk)
                assert row.sent_at is None and row.parked_at is None and "Unroutable" in row.park_reason
                queue = f"{bare}.observe"
                with channel(service.amqp_url) as ch:
                    ch.queue_declare(queue, durable=True)
                    ch.queue_bind(queue, bare, routing_key=f"{NAMESPACE}.svc.effect")
                wait_until(lambda: OutboxMessage.objects.get(pk=pk).sent_at is not None, 10, "sent once routable")
            finally:
                worker.stop()
        assert service.depth(queue) == 1
    finally:
        with channel(service.amqp_url) as ch:
            ch.queue_delete(f"{bare}.observe")
            ch.exchange_delete(bare)


def test_an_event_published_before_any_subscription_is_kept_and_replayed_once_there_is_one(
    service, uid, sidecars, broker
):
    from svcapp.models import Effect

    from rabbitsync.django import publish
    from rabbitsync.django.models import OutboxMessage
    from rabbitsync.topology.naming import unroutable_name

    kept = unroutable_name(service.exchange)
    with transaction.atomic():
        event = publish("svc.effect", {}, subject="early")
    wait_until(lambda: OutboxMessage.objects.get(event_id=event.id).sent_at is not None, 10, "the row sent")
    wait_until(lambda: service.depth(kept) == 1, 10, "the event kept by the alternate exchange")

    spec = service.declare(make_spec(uid, ["svc.effect"]))
    sidecars(spec).wait_ready()
    # The replay is the CLI's, an extra of its own: absent where only rabbitsync[django] is (make test-django42).
    main = pytest.importorskip("rabbitsync.cli", reason="rabbitsync[cli] is not installed").main
    cli = ["--amqp-url", broker.amqp_url, "unroutable"]
    assert main([*cli, "list", "--exchange", service.exchange]) == 0
    publisher = user_url(service.identities, PUBLISHING)
    replay = [*cli, "replay", "--exchange", service.exchange, "--publisher-url", publisher]
    assert main(replay) == 0
    wait_until(lambda: Effect.objects.filter(event_id=event.id).count() == 1, 10, "the replayed event applied")
    assert service.depth(kept) == 0
    assert main(replay) == 0, "a second replay finds nothing and fails nothing"
    assert Effect.objects.filter(event_id=event.id).count() == 1


def test_a_forged_version_far_ahead_is_dead_lettered_with_the_reason_and_never_wins(service, uid, sidecars):
    from svcapp.models import Entity

    spec = service.declare(make_spec(uid, ["svc.entity"], max_attempts=5))
    sidecars(spec).wait_ready()
    forged = new_event(
        type="svc.entity", origin=OTHER, data={"name": "forged", "price": 1}, subject="k1", version=2**63 - 1
    )
    service.send_event(forged)
    wait_until(lambda: service.depth(spec.dead_letter_queue) == 1, 15, "the forged version dead-lettered")
    [(props, _body)] = service.take(spec.dead_letter_queue)
    assert props.headers["x-rabbitsync-reason"] == "poison"
    assert props.headers["x-rabbitsync-exception-type"] == "rabbitsync.django.lww.VersionOutOfBounds"
    assert "VERSION_MAX_SKEW" in props.headers["x-rabbitsync-exception-message"]
    assert not Entity.objects.filter(key="k1").exists()
    honest = new_event(type="svc.entity", origin=OTHER, data={"name": "honest", "price": 2}, subject="k1")
    service.send_event(honest)
    wait_until(lambda: Entity.objects.filter(key="k1", name="honest").exists(), 10, "an honest write applied")


def _born_leased(worker, seconds: float) -> object:
    """A committed row as ``publish()`` leaves it for ``worker``: leased to it for ``seconds``."""
    from datetime import timedelta

    from django.utils import timezone

    from rabbitsync.django.models import OutboxMessage

    event = new_event(type="svc.effect", origin=PUBLISHING, data={"born": True})
    return OutboxMessage.objects.create(
        event_id=event.id,
        type=event.type,
        body=encode(event),
        lease_owner=worker.token,
        lease_until=timezone.now() + timedelta(seconds=seconds),
    )


def test_a_handed_over_row_is_sent_unclaimed_unless_its_birth_lease_would_not_outlast_the_publish(outbox, monkeypatch):
    """The fast path skips the claim (issue 11: it was the largest step from commit to broker), but
    never publishes a row whose lease could expire mid-publish: another relay may take it then."""
    from rabbitsync.django import leases, relay
    from rabbitsync.django.conf import get_settings

    claims: list[set[int] | None] = []
    real_claim = leases.claim

    def claim(batch, lease, ids=None, **kwargs):
        claims.append(ids)
        return real_claim(batch, lease, ids, **kwargs)

    monkeypatch.setattr(leases, "claim", claim)
    publisher = FakePublisher()
    with override_settings(RABBITSYNC=_overrides(confirm_timeout=5, relay_lease=60)):
        worker = relay.OutboxRelay(get_settings(), sweep=False, publisher=publisher).start()  # type: ignore[arg-type]
        try:
            fresh = _born_leased(worker, 60)
            worker.hand_over(fresh)
            wait_until(lambda: publisher.sent == [fresh.event_id], 5, "the handed-over row sent")
            wait_until(lambda: outbox.objects.get(pk=fresh.pk).sent_at is not None, 5, "and marked sent")
            assert claims == [], "the fast path claimed its own row"

            short = _born_leased(worker, 2)  # less than confirm_timeout + the margin left
            worker.hand_over(short)
            wait_until(lambda: short.event_id in publisher.sent, 5, "the short-leased row sent")
            assert claims and claims[0] == {short.pk}, "a row whose lease may expire mid-publish was not claimed"
        finally:
            worker.stop()
    assert outbox.objects.filter(sent_at__isnull=True).count() == 0


def test_a_stopping_relay_releases_the_rows_handed_over_to_it_for_any_sweep(outbox):
    from rabbitsync.django import leases, relay
    from rabbitsync.django.conf import get_settings

    with override_settings(RABBITSYNC=_overrides()):
        worker = relay.OutboxRelay(get_settings(), sweep=False, publisher=FakePublisher())  # type: ignore[arg-type]
        row = _born_leased(worker, 60)
        worker.hand_over(row)  # the thread never started: the row is still waiting
        assert leases.claim(10, 60) == [], "a row born leased is claimable by others before its lease ends"
        worker.stop()
        assert [r.pk for r in leases.claim(10, 60)] == [row.pk]
