"""The transactional publish and the outbox relay, against a real broker and a real database."""

from __future__ import annotations

import time

import pytest
from conftest import BOTH_DATABASES, PUBLISHING, make_spec, wait_until
from django.db import transaction

pytestmark = pytest.mark.integration


def _sent(model):
    return sorted(model.objects.values_list("pk", flat=True).filter(sent_at__isnull=False))


def _queue_for(service, uid):
    """A plain observation queue bound to the test's exchange: what reached the broker."""
    spec = make_spec(uid, ["svc.effect"], name="observe")
    service.declare(spec)
    return spec.queue


@BOTH_DATABASES
def test_rolled_back_publish_sends_nothing_committed_sends_exactly_one(service, uid):
    from rabbitsync.django import publish
    from rabbitsync.django.models import OutboxMessage

    queue = _queue_for(service, uid)

    with pytest.raises(RuntimeError), transaction.atomic():
        publish("svc.effect", {"n": 1}, subject="rolled-back")
        raise RuntimeError("business logic failed")
    assert OutboxMessage.objects.count() == 0

    with transaction.atomic():
        committed = publish("svc.effect", {"n": 2}, subject="committed")
    started = time.monotonic()
    wait_until(lambda: service.depth(queue) >= 1, 5, "the committed event on the broker", interval=0.005)
    latency = time.monotonic() - started
    time.sleep(1.5)  # long enough for a sweep or a stray retry to add a copy, if there were one

    messages = service.take(queue)
    assert [props.message_id for props, _ in messages] == [committed.id]
    props, body = messages[0]
    assert props.content_type == "application/cloudevents+json"
    assert props.delivery_mode == 2
    assert props.type == "svc.effect"
    assert props.timestamp == int(committed.time.timestamp())
    assert b'"subject":"committed"' in body
    assert OutboxMessage.objects.get().sent_at is not None
    # Woken by on_commit, not found by a polling loop: well under the 1 s sweep interval.
    assert latency < 0.5, f"event took {latency:.3f}s to reach the broker"


def test_row_committed_late_with_a_smaller_id_is_still_sent(service, uid, sidecars):
    """No "id > last sent" watermark: a row with a smaller id that appears later is swept too."""
    from rabbitsync.django.models import OutboxMessage
    from rabbitsync.events import encode, new_event

    queue = _queue_for(service, uid)
    consumer = make_spec(uid, ["svc.nothing"], name="idle")
    service.declare(consumer)

    def row(pk):
        event = new_event(type="svc.effect", origin=PUBLISHING, data={}, subject=str(pk))
        return OutboxMessage(pk=pk, event_id=event.id, type=event.type, body=encode(event))

    # Written without publish(), so no process is woken: only the sidecar's sweep can send them.
    late = row(1000)
    late.save()
    sidecar = sidecars(consumer).wait_ready()
    wait_until(lambda: service.depth(queue) == 1, 10, "the first row to be swept")
    row(5).save()  # committed after a higher id was already sent
    wait_until(lambda: service.depth(queue) == 2, 10, "the late row with the smaller id to be swept")
    # A row is marked sent once its confirm is back, a moment after the broker has queued it.
    wait_until(lambda: _sent(OutboxMessage) == [5, 1000], 10, "both rows marked sent")
    wait_until(lambda: sidecar.metric("rabbitsync_outbox_backlog") == 0, 10, "no backlog left")


def test_a_sidecar_without_subscriptions_relays_the_outbox_and_is_ready(service, uid, sidecars):
    """A service that only publishes: its sidecar sweeps the outbox, serves its probes, consumes nothing."""
    from rabbitsync.django.models import OutboxMessage
    from rabbitsync.events import encode, new_event

    queue = _queue_for(service, uid)
    sidecar = sidecars().wait_ready()  # RABBITSYNC_SUBSCRIPTIONS is "[]", as the operator injects it
    event = new_event(type="svc.effect", origin=PUBLISHING, data={}, subject="publish-only")
    # Written without publish(), so no process is woken: only the sidecar's sweep can send it.
    OutboxMessage.objects.create(event_id=event.id, type=event.type, body=encode(event))
    wait_until(lambda: service.depth(queue) == 1, 10, "the row swept by the publish-only sidecar")
    wait_until(lambda: sidecar.metric("rabbitsync_outbox_backlog") == 0, 5, "the row marked sent")
    assert sidecar.metric("rabbitsync_consumed_total") == 0
    assert sidecar.get("/healthz")[0] == 200
    assert sidecar.terminate() == 0


def test_relay_dying_between_confirm_and_mark_resends_and_the_inbox_absorbs_it(service, uid, sidecars):
    """A relay that published but never marked the row leaves a lease; when it expires another
    relay (the sidecar's sweep) sends the row again. Two copies on the wire, one effect."""
    from django.test import override_settings
    from svcapp.models import Effect

    from rabbitsync.django import publish, relay
    from rabbitsync.django.conf import get_settings
    from rabbitsync.django.models import OutboxMessage

    spec = service.declare(make_spec(uid, ["svc.effect"]))
    sidecar = sidecars(spec).wait_ready()

    settings = {**get_settings().__dict__}
    overrides = {k.upper(): v for k, v in settings.items()} | {
        "RELAY_IN_PROCESS": False,
        "RELAY_LEASE": 4,
        "CONFIRM_TIMEOUT": 3,  # issue 10: a lease must outlast a publish
    }
    with override_settings(RABBITSYNC=overrides):
        event = publish("svc.effect", {}, subject="dies-before-mark")
        dying = relay.OutboxRelay(get_settings(), sweep=False).start()
        try:
            rows = dying.claim()
            assert [r.event_id for r in rows] == [event.id]
            dying.send(rows)  # confirmed by the broker ... and then the process "dies": no mark_sent
        finally:
            dying.stop()

    wait_until(lambda: Effect.objects.filter(event_id=event.id).exists(), 10, "the first copy applied")
    wait_until(lambda: sidecar.metric("rabbitsync_duplicates_skipped_total") == 1, 15, "the resent copy skipped")
    assert Effect.objects.filter(event_id=event.id).count() == 1
    assert sidecar.metric("rabbitsync_consumed_total") == 2
    assert OutboxMessage.objects.get(event_id=event.id).sent_at is not None


def test_purge_deletes_only_rows_past_their_retention(service):
    from datetime import timedelta

    from django.utils import timezone

    from rabbitsync.django import publish, relay, retention
    from rabbitsync.django.conf import get_settings
    from rabbitsync.django.models import InboxMessage, OutboxMessage

    with transaction.atomic():
        old, recent, unsent = (publish("svc.nothing", {}, subject=s) for s in ("old", "recent", "unsent"))
    # The commit woke this process's relay: stopped (joined) before the rows are aged by hand, or its
    # late "sent now" would overwrite them (seen in CI on a loaded machine: nothing was old enough).
    relay.stop_local_relay()
    long_ago = timezone.now() - timedelta(days=30)
    OutboxMessage.objects.filter(event_id=old.id).update(sent_at=long_ago)
    OutboxMessage.objects.filter(event_id=recent.id).update(sent_at=timezone.now())
    OutboxMessage.objects.filter(event_id=unsent.id).update(
        sent_at=None, lease_owner="x", lease_until=timezone.now() + timedelta(days=1)
    )
    InboxMessage.objects.create(event_id="old", type="t", source="s")
    InboxMessage.objects.create(event_id="new", type="t", source="s")
    InboxMessage.objects.filter(event_id="old").update(received_at=long_ago)

    assert retention.purge(get_settings()) == (1, 1)
    assert set(OutboxMessage.objects.values_list("event_id", flat=True)) == {recent.id, unsent.id}
    assert list(InboxMessage.objects.values_list("event_id", flat=True)) == ["new"]


@BOTH_DATABASES
def test_two_relays_draining_one_outbox_lose_nothing_and_never_share_a_lease(service, uid):
    """Two relays (own connections, own broker channels) claim from one outbox at once, in small
    batches: every committed row reaches the broker and is marked sent, and no row is ever leased
    to both (the claim's UPDATE re-checks the lease, so the loser of a race gets nothing)."""
    import threading

    from django.db import close_old_connections, connection
    from django.test import override_settings

    from rabbitsync.django import relay
    from rabbitsync.django.conf import get_settings
    from rabbitsync.django.models import OutboxMessage
    from rabbitsync.events import encode, new_event

    queue = _queue_for(service, uid)
    origin = PUBLISHING
    events = [new_event(type="svc.effect", origin=origin, data={"n": n}, subject=f"row-{n}") for n in range(600)]
    # Written without publish(), so only the two relays below send them.
    OutboxMessage.objects.bulk_create(OutboxMessage(event_id=e.id, type=e.type, body=encode(e)) for e in events)

    settings = {k.upper(): v for k, v in get_settings().__dict__.items()}
    overrides = settings | {"RELAY_IN_PROCESS": False, "RELAY_BATCH_SIZE": 7, "RELAY_LEASE": 120}
    claimed: dict[str, list[str]] = {"a": [], "b": []}
    errors: list[BaseException] = []
    go = threading.Barrier(2)

    with override_settings(RABBITSYNC=overrides):
        relays = {name: relay.OutboxRelay(get_settings(), sweep=False).start() for name in claimed}

        def run(name: str) -> None:
            worker = relays[name]
            try:
                go.wait()
                while True:  # drain(), recording what this relay's leases held
                    rows = worker.claim()
                    if not rows and not OutboxMessage.objects.filter(sent_at__isnull=True).exists():
                        return
                    if rows:
                        claimed[name] += [row.event_id for row in rows]
                        worker.send(rows)
                        worker.mark_sent(rows)
            except BaseException as e:
                errors.append(e)
            finally:
                close_old_connections()
                connection.close()

        threads = [threading.Thread(target=run, args=(name,)) for name in claimed]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
        finally:
            for worker in relays.values():
                worker.stop()

    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads), "a relay did not finish"
    assert claimed["a"] and claimed["b"], f"one relay never won a claim: {len(claimed['a'])}/{len(claimed['b'])}"
    both = set(claimed["a"]) & set(claimed["b"])
    assert not both, f"{len(both)} rows leased to both relays at once"
    assert OutboxMessage.objects.filter(sent_at__isnull=True).count() == 0
    on_the_wire = [props.message_id for props, _ in service.take(queue)]
    assert set(on_the_wire) == {e.id for e in events}, "a committed row never reached the broker"
    assert len(on_the_wire) == len(claimed["a"]) + len(claimed["b"]) == len(events)


@BOTH_DATABASES
def test_relay_process_sigkilled_after_confirm_before_mark_resends_and_the_inbox_absorbs_it(service, uid, sidecars):
    """The real thing: a relay *process* (relay_then_die.py) claims, publishes, gets its confirms
    and is SIGKILLed before marking the row sent. After its lease expires a normal sidecar sends the
    row again: two copies on the wire, one effect, and the row ends up marked sent."""
    import signal
    import sys

    from django.test import override_settings
    from svcapp.models import Effect

    from rabbitsync.django import publish
    from rabbitsync.django.conf import get_settings
    from rabbitsync.django.models import OutboxMessage

    spec = service.declare(make_spec(uid, ["svc.effect"]))
    settings = {k.upper(): v for k, v in get_settings().__dict__.items()}
    with override_settings(RABBITSYNC=settings | {"RELAY_IN_PROCESS": False}), transaction.atomic():
        event = publish("svc.effect", {}, subject="killed-before-mark")

    dying = sidecars(
        spec, command=[sys.executable, "relay_then_die.py"], RABBITSYNC_RELAY_LEASE="4", RABBITSYNC_CONFIRM_TIMEOUT="3"
    )
    assert dying.process is not None
    assert dying.process.wait(30) == -signal.SIGKILL, dying.logs()
    assert f"published {event.id}" in dying.logs()
    row = OutboxMessage.objects.get(event_id=event.id)
    assert row.sent_at is None and row.lease_owner, "the killed relay must leave an unmarked, leased row"
    assert service.depth(spec.queue) == 1  # the confirmed copy is on the broker

    sidecar = sidecars(spec).wait_ready()
    wait_until(lambda: Effect.objects.filter(event_id=event.id).exists(), 10, "the first copy applied")
    wait_until(lambda: sidecar.metric("rabbitsync_duplicates_skipped_total") == 1, 15, "the resent copy skipped")
    assert Effect.objects.filter(event_id=event.id).count() == 1
    assert sidecar.metric("rabbitsync_consumed_total") == 2
    wait_until(lambda: OutboxMessage.objects.get(event_id=event.id).sent_at is not None, 10, "the row marked sent")
