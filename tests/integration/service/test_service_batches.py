"""Batch mode and parallel workers (issue 11): savepoints per event, and per-entity order kept.

The fault tests (``test_service_faults``, the database outage, the dead-letter path) run in every
consumer mode already; these are what only the new modes have.
"""

from __future__ import annotations

import collections
import time

import pika
import pytest
from conftest import BOTH_DATABASES, NAMESPACE, channel, make_spec, user_url, wait_until

from rabbitsync.conventions import broker_username, routing_key
from rabbitsync.events import CONTENT_TYPE, Origin, encode, new_event

pytestmark = pytest.mark.integration

OTHER = Origin("c2", NAMESPACE, "publisher")
ENTITIES, UPDATES = 10, 1000


@BOTH_DATABASES
def test_one_failing_event_of_a_batch_rolls_back_alone(service, database):
    from svcapp.models import Effect

    from rabbitsync.django.inbox import Outcome, apply_many
    from rabbitsync.django.models import InboxMessage

    before = new_event(type="svc.effect", origin=OTHER, data={}, subject="before")
    broken = new_event(type="svc.broken", origin=OTHER, data={}, subject="bad")
    after = new_event(type="svc.effect", origin=OTHER, data={}, subject="after")
    results = apply_many([before, broken, after, before])
    assert results[0] is Outcome.APPLIED and results[2] is Outcome.APPLIED
    assert isinstance(results[1], ValueError)
    assert results[3] is Outcome.DUPLICATE  # the inbox row of the same transaction already counts
    assert sorted(Effect.objects.values_list("subject", flat=True)) == ["after", "before"]
    assert set(InboxMessage.objects.values_list("event_id", flat=True)) == {before.id, after.id}


@BOTH_DATABASES
def test_a_handlers_own_integrity_error_is_its_failure_not_a_duplicate(service, database):
    """The inbox row is inserted without a look first: only a row that is there makes an
    IntegrityError a duplicate. Alone and in a batch, the handler's own is raised and nothing stays."""
    from django.db import IntegrityError

    from rabbitsync.django.inbox import Outcome, apply, apply_many
    from rabbitsync.django.models import InboxMessage

    conflicting = new_event(type="svc.conflicting", origin=OTHER, data={}, subject="own")
    with pytest.raises(IntegrityError):
        apply(conflicting)
    fine = new_event(type="svc.effect", origin=OTHER, data={}, subject="fine")
    results = apply_many([fine, conflicting, fine])
    assert results[0] is Outcome.APPLIED and results[2] is Outcome.DUPLICATE
    assert isinstance(results[1], IntegrityError)
    assert set(InboxMessage.objects.values_list("event_id", flat=True)) == {fine.id}


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
def test_the_same_event_applied_by_two_replicas_at_once_has_one_effect(service, database):
    """A redelivery to another replica while the first still applies: the second waits on the first's
    inbox row, then finds it committed."""
    import threading

    from django.db import connections
    from svcapp.models import Effect

    from rabbitsync.django.inbox import Outcome, apply

    event = new_event(type="svc.effect", origin=OTHER, data={"sleep": 1.0}, subject="once")
    outcomes: list[object] = []

    def replica() -> None:
        try:
            outcomes.append(apply(event))
        except BaseException as e:  # reported, not lost in the thread
            outcomes.append(e)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=replica) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.3)  # the first is inside its handler when the second inserts
    for thread in threads:
        thread.join(30)
    assert sorted(str(o) for o in outcomes) == [str(Outcome.APPLIED), str(Outcome.DUPLICATE)]
    assert list(Effect.objects.filter(event_id=event.id).values_list("subject", flat=True)) == ["once"]


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
def test_parallel_workers_keep_each_entitys_updates_in_order_under_redelivery(service, uid, sidecars, broker, database):
    """1,000 updates to 10 entities, published in order over one connection; the connections are
    force-closed twice while they are applied (every unacked delivery comes back). Four workers,
    batches of 25: each entity's updates must be applied exactly once each, in the order published."""
    from svcapp.models import Effect

    spec = service.declare(make_spec(uid, ["svc.seq"], prefetch=100, batch=25))
    sidecar = sidecars(spec, RABBITSYNC_CONSUME_WORKERS="4").wait_ready(timeout=180)  # a loaded machine starts slowly
    keys = [f"{uid}-entity-{n}" for n in range(ENTITIES)]
    events = [
        new_event(type="svc.seq", origin=OTHER, data={"seq": n}, subject=keys[n % ENTITIES]) for n in range(UPDATES)
    ]
    # One connection, in order: two relays (this process's, the sidecar's sweep) could interleave batches.
    with channel(user_url(service.identities, OTHER)) as ch:
        ch.confirm_delivery()
        for event in events:
            properties = pika.BasicProperties(
                content_type=CONTENT_TYPE, delivery_mode=2, message_id=event.id, user_id=broker_username(*OTHER)
            )
            ch.basic_publish(service.exchange, routing_key(NAMESPACE, event.type), encode(event), properties)
    closes = 0
    for threshold in (UPDATES // 5, UPDATES // 2):
        wait_until(lambda t=threshold: Effect.objects.count() >= t, 120, f"{threshold} updates applied")
        broker.close_all_connections()
        closes += 1
    wait_until(lambda: Effect.objects.count() >= UPDATES, 180, "every update applied")
    time.sleep(1)  # a late duplicate would land in this window

    applied = collections.defaultdict(list)
    for subject in Effect.objects.order_by("id").values_list("subject", flat=True):
        key, seq = subject.rsplit(":", 1)
        applied[key].append(int(seq))
    assert sorted(applied) == sorted(keys)
    for key in keys:
        published = [seq for seq in range(UPDATES) if keys[seq % ENTITIES] == key]
        assert applied[key] == published, f"{key} applied out of order or not exactly once"
    assert closes == 2 and sidecar.metric("rabbitsync_reconnects_total") >= 1
    assert sidecar.process is not None and sidecar.process.poll() is None
