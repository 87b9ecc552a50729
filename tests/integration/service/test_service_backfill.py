"""Backfill through real sidecars, a real broker and a real database.

The serving sidecar runs as the publishing service (``publisher``, publish-only) and takes requests
from its request queue; the consuming sidecar runs as ``consumer`` with one subscription. Items
exist before the request, some of them deleted (tombstones); the consumer's copy must end with
exactly the same rows, versions and tombstones, and another subscriber of the same types must see
nothing of the snapshot.
"""

from __future__ import annotations

import uuid

import pika
import pytest
from conftest import CLUSTER, NAMESPACE, PUBLISHER, PUBLISHING, channel, make_spec, publish, user_url, wait_until

from rabbitsync.conventions import backfill_binding_key, backfill_routing_key, broker_username
from rabbitsync.events import encode as encode_event
from rabbitsync.events.backfill import REQUEST_TYPE, BackfillRequest, decode_report, encode
from rabbitsync.topology import naming

pytestmark = pytest.mark.integration

TYPES = ["svc.item.updated", "svc.item.deleted"]
PUBLISHER_USER = broker_username(*PUBLISHING)
READY_UNDER_LOAD = 120
"""Seconds a restarted sidecar may take to be ready on a machine shared by many test sessions."""
REQUESTS = naming.backfill_request_queue(CLUSTER, NAMESPACE, PUBLISHER)


@pytest.fixture
def items(service):
    from svcapp.models import Item, ItemCopy

    Item.objects.all().delete()
    ItemCopy.objects.all().delete()
    with channel(service.amqp_url) as ch:
        ch.queue_declare(REQUESTS, durable=True, arguments={"x-queue-type": "quorum"})
    yield Item
    with channel(service.amqp_url) as ch:
        ch.queue_delete(REQUESTS)


def subscribe(service, uid, name):
    """A subscription's queue as the operator declares it, with its snapshot binding."""
    spec = service.declare(make_spec(uid, TYPES, name=name, max_attempts=3, initial_backoff_ms=200))
    with channel(service.amqp_url) as ch:
        ch.queue_bind(spec.queue, service.exchange, routing_key=backfill_binding_key(NAMESPACE, spec.queue))
    return spec


def create_items(count, deleted):
    from svcapp.models import Item

    from rabbitsync.django import next_version

    rows = [
        Item(key=f"item-{i:05d}", name=f"name {i}", deleted=i < deleted, sync_version=next_version())
        for i in range(count)
    ]
    for row in rows:
        row.sync_source = PUBLISHING.source
    Item.objects.bulk_create(rows, batch_size=500)


def request_backfill(service, queue):
    request = BackfillRequest(id=uuid.uuid4().hex, namespace=NAMESPACE, queue=queue, types=tuple(TYPES))
    with channel(service.amqp_url) as ch:  # the operator's part, with its admin credentials
        ch.confirm_delivery()
        properties = pika.BasicProperties(content_type=REQUEST_TYPE, delivery_mode=2)
        ch.basic_publish("", REQUESTS, encode(request), properties)
    return request


def state(model):
    return {(r.key, r.name, r.deleted, r.sync_version, r.sync_source) for r in model.objects.all()}


def test_a_new_subscriber_gets_exactly_the_live_rows_and_tombstones_with_their_versions(service, uid, items, sidecars):
    from svcapp.models import Item, ItemCopy

    create_items(1000, deleted=50)
    spec = subscribe(service, uid, "new")
    bystander = subscribe(service, uid, "bystander")
    server = sidecars(RABBITSYNC_SERVICE=PUBLISHER).wait_ready()
    consumer = sidecars(spec).wait_ready()

    reports = naming.backfill_status_queue(spec.queue)
    with channel(service.amqp_url) as ch:  # the operator's status queue, as it declares it
        ch.queue_declare(reports, durable=True, arguments={"x-queue-type": "quorum"})
    request = request_backfill(service, spec.queue)
    wait_until(lambda: consumer.metric("rabbitsync_backfills_completed_total") == 1, 600, "the backfill complete")

    assert state(ItemCopy) == state(Item)
    assert ItemCopy.objects.filter(deleted=False).count() == 950
    # What the operator reads: the sidecar's own word, confirmed before it acked the end marker.
    said = [(props.user_id, decode_report(body)) for props, body in service.take(reports)]
    assert said and said[-1][0] == PUBLISHER_USER  # the sidecars of these tests log in as the publisher
    last = said[-1][1]
    assert (last.request, last.sent, last.applied, last.complete) == (request.id, 1000, 1000, True)
    assert all(not r.complete for _user, r in said[:-1])
    with channel(service.amqp_url) as ch:
        ch.queue_delete(reports)
    assert server.metric("rabbitsync_backfill_events_sent_total") == 1000
    assert consumer.metric("rabbitsync_applied_total") == 1000
    assert service.depth(bystander.queue) == 0 and service.depth(spec.dead_letter_queue) == 0
    assert service.depth(REQUESTS) == 0


def write(key, *, name=None, delete=False):
    """A live write of the publishing service: the row and its event in one transaction."""
    from django.db import transaction
    from svcapp.models import Item

    from rabbitsync.django import next_version, publish

    with transaction.atomic():
        row = Item.objects.select_for_update().get(key=key)
        row.sync_version = next_version(row.sync_version)
        row.name = name or row.name
        row.deleted = row.deleted or delete
        row.save()
        publish(TYPES[row.deleted], {"name": row.name}, subject=key, version=row.sync_version)


def converged(service, spec):
    from svcapp.models import Item, ItemCopy

    from rabbitsync.django import relay

    return relay.backlog() == 0 and service.depth(spec.queue) == 0 and state(ItemCopy) == state(Item)


def test_writes_during_the_backfill_converge(service, uid, items, sidecars):
    create_items(1000, deleted=50)
    spec = subscribe(service, uid, "busy")
    sidecars(RABBITSYNC_SERVICE=PUBLISHER, RABBITSYNC_RELAY_BATCH_SIZE="50").wait_ready()
    consumer = sidecars(spec).wait_ready()

    request_backfill(service, spec.queue)
    for i in range(200):  # updates spread over the table, then deletes, while the pages go out
        write(f"item-{(i * 7) % 1000:05d}", name=f"renamed {i}")
    for i in range(50):
        write(f"item-{999 - i * 3:05d}", delete=True)
    wait_until(lambda: consumer.metric("rabbitsync_backfills_completed_total") == 1, 600, "the backfill complete")
    wait_until(lambda: converged(service, spec), 300, "the copy to match the source")
    assert service.depth(spec.dead_letter_queue) == 0


@pytest.mark.parametrize("killed", ["server", "consumer"])
def test_a_sidecar_killed_mid_backfill_never_claims_completion_early_and_the_backfill_completes(
    service, uid, items, sidecars, killed
):
    from svcapp.models import Item, ItemCopy

    create_items(1500, deleted=100)
    spec = subscribe(service, uid, f"killed-{killed}")
    slow = {"RABBITSYNC_SERVICE": PUBLISHER, "RABBITSYNC_RELAY_BATCH_SIZE": "20"}
    server = sidecars(**slow).wait_ready(READY_UNDER_LOAD)
    consumer = sidecars(spec).wait_ready(READY_UNDER_LOAD)

    request_backfill(service, spec.queue)
    wait_until(lambda: ItemCopy.objects.count() >= 100, 60, "the backfill under way")
    victim = server if killed == "server" else consumer
    victim.kill()
    assert ItemCopy.objects.count() < 1500, "killed too late to prove anything"
    assert consumer.metric("rabbitsync_backfills_completed_total") == 0 if killed == "server" else True
    if killed == "server":
        sidecars(**slow).wait_ready(READY_UNDER_LOAD)  # the request, never acked, goes to the next server: a new run
    else:
        consumer = sidecars(spec).wait_ready(READY_UNDER_LOAD)
    wait_until(lambda: consumer.metric("rabbitsync_backfills_completed_total") == 1, 600, "the backfill complete")
    assert state(ItemCopy) == state(Item)
    assert service.depth(spec.dead_letter_queue) == 0 and service.depth(REQUESTS) == 0


def test_a_snapshot_whose_routing_key_names_another_type_is_dead_lettered_not_applied(service, uid, items, sidecars):
    from svcapp.models import ItemCopy

    from rabbitsync.events import new_event

    spec = subscribe(service, uid, "misaddressed")
    sidecars(spec).wait_ready()
    event = new_event(type=TYPES[0], origin=PUBLISHING, data={"name": "smuggled"}, subject="item-x", version=1)
    # The key of the other type: what a publisher allowed only that type could send.
    key = backfill_routing_key(NAMESPACE, TYPES[1], spec.queue)
    url = user_url(service.identities, PUBLISHING)
    publish(url, service.exchange, key, encode_event(event), event.id, PUBLISHER_USER)
    wait_until(lambda: service.depth(spec.dead_letter_queue) == 1, 20, "the smuggled event dead-lettered")
    [(props, _body)] = service.take(spec.dead_letter_queue)
    assert props.headers["x-rabbitsync-reason"] == "misaddressed"
    assert not ItemCopy.objects.filter(key="item-x").exists()


@pytest.mark.timeout(1800)
def test_backfill_throughput_against_the_live_throughput_of_the_same_sidecar(service, uid, items, sidecars):
    """The figures of ``bench/backfill.py`` (which runs this test with RABBITSYNC_BENCH_JSON set).

    Live: ``n`` events already in the queue, drained by a sidecar started on them. Backfill: a snapshot
    of ``n`` rows requested of the serving sidecar, from the request to the end marker's ack.
    """
    import json
    import os
    import time
    from pathlib import Path

    from svcapp.models import Item, ItemCopy

    from rabbitsync.django import relay

    n = int(os.environ.get("RABBITSYNC_BENCH_ROWS", "1000"))
    create_items(n, deleted=0)
    spec = subscribe(service, uid, "bench")
    from django.db import transaction

    from rabbitsync.django import next_version, publish

    with transaction.atomic():  # one transaction: the figure is the sidecar's, not this process's commits
        for row in Item.objects.all():
            publish(TYPES[0], {"name": "live"}, subject=row.key, version=next_version(row.sync_version))
    wait_until(lambda: relay.backlog() == 0 and service.depth(spec.queue) >= n, 300, "the live events queued")
    consumer = sidecars(spec).wait_ready(READY_UNDER_LOAD)
    wait_until(lambda: consumer.metric("rabbitsync_applied_total") >= 1, 60, "the first live event applied")
    started = time.monotonic()  # from the first event applied: the sidecar's start is not its throughput
    wait_until(lambda: consumer.metric("rabbitsync_applied_total") >= n, 600, "the live events applied")
    live_s = (time.monotonic() - started) * n / (n - 1)
    ItemCopy.objects.all().delete()
    sidecars(RABBITSYNC_SERVICE=PUBLISHER).wait_ready(READY_UNDER_LOAD)
    started = time.monotonic()
    request_backfill(service, spec.queue)
    wait_until(lambda: consumer.metric("rabbitsync_backfills_completed_total") == 1, 600, "the backfill complete")
    backfill_s = time.monotonic() - started
    assert state(ItemCopy) == state(Item)
    figures = {"rows": n, "live_events_per_s": n / live_s, "backfill_events_per_s": n / backfill_s}
    figures["backfill_over_live"] = figures["backfill_events_per_s"] / figures["live_events_per_s"]
    print(figures)
    if os.environ.get("RABBITSYNC_BENCH_JSON"):
        Path(os.environ["RABBITSYNC_BENCH_JSON"]).write_text(json.dumps(figures))
