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
