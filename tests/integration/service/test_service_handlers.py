"""Handlers through a real sidecar: dedup, retries, dead letters, poison, own events, LWW, probes."""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

import pytest
from conftest import BOTH_DATABASES, CLUSTER, CONSUMER, EVERY_MODE, MODES, NAMESPACE, make_spec, wait_until

from rabbitsync.events import Origin, new_event

pytestmark = pytest.mark.integration

OTHER = Origin("c2", NAMESPACE, "publisher")


def effects(event_id):
    from svcapp.models import Effect

    return Effect.objects.filter(event_id=event_id).count()


@BOTH_DATABASES
def test_redelivered_event_id_has_one_effect(service, uid, sidecars):
    spec = service.declare(make_spec(uid, ["svc.effect"]))
    sidecar = sidecars(spec).wait_ready()
    event = new_event(type="svc.effect", origin=OTHER, data={}, subject="once")
    for _ in range(3):
        service.send_event(event)
    wait_until(lambda: sidecar.metric("rabbitsync_consumed_total") == 3, 10, "three deliveries")
    wait_until(lambda: sidecar.metric("rabbitsync_duplicates_skipped_total") == 2, 5, "two duplicates")
    assert effects(event.id) == 1
    assert sidecar.metric("rabbitsync_applied_total") == 1
    assert service.depth(spec.queue) == 0


def test_handler_failing_twice_is_retried_with_backoff_then_applied_once(service, uid, sidecars, django_project):
    spec = service.declare(make_spec(uid, ["svc.flaky"], max_attempts=3, initial_backoff_ms=400, max_backoff_ms=800))
    sidecar = sidecars(spec).wait_ready()
    event = new_event(type="svc.flaky", origin=OTHER, data={"fail_times": 2}, subject="flaky")
    service.send_event(event)

    wait_until(lambda: effects(event.id) == 1, 20, "the third attempt to succeed")
    attempts = [float(t) for t in (Path(django_project["SVC_ATTEMPTS_DIR"]) / event.id).read_text().split()]
    assert len(attempts) == 3
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    # The delay queues' TTLs (400 ms, then 800 ms) separate the attempts; allow some scheduling slack.
    assert 0.38 <= gaps[0] < 2.0, gaps
    assert 0.78 <= gaps[1] < 3.0, gaps
    # The metric follows the ack, which follows the commit the test just saw.
    wait_until(lambda: sidecar.metric("rabbitsync_applied_total") == 1, 5, "the ack")
    assert sidecar.metric("rabbitsync_retried_total") == 2
    assert service.depth(spec.dead_letter_queue) == 0


@EVERY_MODE
def test_always_failing_handler_is_dead_lettered_with_reason_and_others_keep_flowing(service, uid, sidecars, mode):
    """In a batch, the failing event's savepoint rolls back alone: the events around it commit."""
    spec = service.declare(
        make_spec(
            uid,
            ["svc.broken", "svc.effect"],
            max_attempts=3,
            initial_backoff_ms=100,
            max_backoff_ms=200,
            batch=MODES[mode].batch,
        )
    )
    sidecar = sidecars(spec, **MODES[mode].env).wait_ready()
    broken = new_event(type="svc.broken", origin=OTHER, data={}, subject="bad")
    service.send_event(broken)
    followers = [new_event(type="svc.effect", origin=OTHER, data={}, subject=f"after-{i}") for i in range(5)]
    for event in followers:
        service.send_event(event)

    wait_until(lambda: service.depth(spec.dead_letter_queue) == 1, 15, "the broken event in the DLQ")
    wait_until(lambda: all(effects(e.id) == 1 for e in followers), 10, "the events behind it")
    [(props, body)] = service.take(spec.dead_letter_queue)
    assert props.message_id == broken.id
    assert props.headers["x-rabbitsync-reason"] == "failed"
    assert props.headers["x-rabbitsync-exception-type"] == "builtins.ValueError"
    assert props.headers["x-rabbitsync-exception-message"] == "broken on purpose: bad"
    assert props.headers["x-rabbitsync-attempts"] == 3
    assert props.headers["x-rabbitsync-queue"] == spec.queue
    assert broken.id.encode() in body  # the original event, replayable as it is
    # The counter moves after the ack, which follows the DLQ publish's confirm the test just saw.
    wait_until(lambda: sidecar.metric("rabbitsync_dead_lettered_total") == 1, 5, "the ack of the original")
    assert sidecar.metric("rabbitsync_retried_total") == 2
    assert service.depth(spec.queue) == 0


def test_poison_messages_go_straight_to_the_dlq(service, uid, sidecars):
    spec = service.declare(make_spec(uid, ["svc.effect", "svc.unknown"]))
    sidecar = sidecars(spec).wait_ready()
    service.send_raw("svc.effect", b"{not json", message_id=f"garbage-{uid}")
    service.send_raw("svc.effect", b'{"specversion": "1.0", "id": "x"}', message_id=f"schema-{uid}")
    service.send_event(new_event(type="svc.unknown", origin=OTHER, data={}, subject="nobody handles me"))
    good = new_event(type="svc.effect", origin=OTHER, data={}, subject="fine")
    service.send_event(good)

    wait_until(lambda: effects(good.id) == 1, 10, "the good event behind the poison")
    wait_until(lambda: service.depth(spec.dead_letter_queue) == 3, 10, "three poison messages dead-lettered")
    dead = service.take(spec.dead_letter_queue)
    assert {props.headers["x-rabbitsync-reason"] for props, _ in dead} == {"poison"}
    kinds = sorted(props.headers["x-rabbitsync-exception-type"] for props, _ in dead)
    assert kinds == [
        "rabbitsync.django.inbox.NoHandler",
        "rabbitsync.events.errors.InvalidEvent",
        "rabbitsync.events.errors.InvalidEvent",
    ]
    assert all(props.headers["x-rabbitsync-attempts"] == 1 for props, _ in dead)
    assert sidecar.metric("rabbitsync_retried_total") == 0


def test_a_rejected_event_is_dead_lettered_at_once_with_nothing_applied(service, uid, sidecars):
    spec = service.declare(make_spec(uid, ["svc.invalid", "svc.effect"], max_attempts=5))
    sidecar = sidecars(spec).wait_ready()
    rejected = new_event(type="svc.invalid", origin=OTHER, data={}, subject="item-7")
    good = new_event(type="svc.effect", origin=OTHER, data={}, subject="fine")
    service.send_event(rejected)
    service.send_event(good)
    wait_until(lambda: effects(good.id) == 1, 10, "the event behind the rejected one")
    wait_until(lambda: service.depth(spec.dead_letter_queue) == 1, 10, "the rejected event dead-lettered")
    [(props, _body)] = service.take(spec.dead_letter_queue)
    assert props.headers["x-rabbitsync-reason"] == "poison"
    assert props.headers["x-rabbitsync-exception-type"] == "rabbitsync.django.inbox.Reject"
    assert props.headers["x-rabbitsync-exception-message"] == "no price in item-7"
    assert props.headers["x-rabbitsync-attempts"] == 1
    assert sidecar.metric("rabbitsync_retried_total") == 0
    assert effects(rejected.id) == 0, "the handler's writes roll back with the rejection"


def test_own_events_are_skipped_but_the_same_service_in_the_other_cluster_is_applied(service, uid, sidecars):
    spec = service.declare(make_spec(uid, ["svc.effect"]))
    sidecar = sidecars(spec).wait_ready()
    own = new_event(type="svc.effect", origin=Origin(CLUSTER, NAMESPACE, CONSUMER), data={}, subject="own")
    twin = new_event(type="svc.effect", origin=Origin("c2", NAMESPACE, CONSUMER), data={}, subject="twin")
    service.send_event(own)
    service.send_event(twin)
    wait_until(lambda: effects(twin.id) == 1, 10, "the other cluster's event")
    assert sidecar.metric("rabbitsync_own_events_skipped_total") == 1
    assert effects(own.id) == 0


@BOTH_DATABASES
def test_concurrent_updates_applied_in_opposite_orders_converge(service, uid, sidecars):
    from svcapp.models import Entity

    spec = service.declare(make_spec(uid, ["svc.entity"]))
    sidecar = sidecars(spec).wait_ready()
    east, west = Origin("east", NAMESPACE, "menu"), Origin("west", NAMESPACE, "menu")

    def writes(key):
        return [
            new_event(type="svc.entity", origin=east, subject=key, version=100, data={"name": "e1", "price": 1}),
            new_event(type="svc.entity", origin=west, subject=key, version=200, data={"name": "w2", "price": 2}),
            # a tie on version: the source decides, identically everywhere
            new_event(type="svc.entity", origin=east, subject=key, version=300, data={"name": "e3", "price": 3}),
            new_event(type="svc.entity", origin=west, subject=key, version=300, data={"name": "w3", "price": 4}),
        ]

    forward, backward = writes("fwd"), writes("bwd")
    for event in forward + backward[::-1]:
        service.send_event(event)
    wait_until(lambda: sidecar.metric("rabbitsync_applied_total") == 8, 10, "all eight writes")

    rows = {e.key: (e.name, e.price, e.sync_version, e.sync_source) for e in Entity.objects.all()}
    assert rows["fwd"] == rows["bwd"] == ("w3", 4, 300, west.source)


def test_long_handler_does_not_starve_heartbeats(service, uid, sidecars):
    spec = service.declare(make_spec(uid, ["svc.effect"]))
    # 2 s heartbeats: a handler blocking the I/O thread for 7 s would get the connection closed.
    sidecar = sidecars(spec, RABBITSYNC_HEARTBEAT="2").wait_ready()
    slow = new_event(type="svc.effect", origin=OTHER, data={"sleep": 7}, subject="slow")
    service.send_event(slow)
    wait_until(lambda: effects(slow.id) == 1, 20, "the slow handler")
    wait_until(lambda: sidecar.metric("rabbitsync_applied_total") == 1, 5, "the ack after the slow handler")
    assert sidecar.metric("rabbitsync_reconnects_total") == 0
    assert sidecar.metric("rabbitsync_duplicates_skipped_total") == 0
    assert sidecar.ready()


def test_sigterm_finishes_and_acks_the_in_flight_event(service, uid, sidecars):
    spec = service.declare(make_spec(uid, ["svc.effect"]))
    sidecar = sidecars(spec).wait_ready()
    slow = new_event(type="svc.effect", origin=OTHER, data={"sleep": 3}, subject="in-flight")
    service.send_event(slow)
    wait_until(lambda: sidecar.metric("rabbitsync_consumed_total") == 1, 10, "the slow event to start")
    started = time.monotonic()
    assert sidecar.terminate(timeout=20) == 0
    assert time.monotonic() - started >= 1.5  # it waited for the handler instead of dying
    assert effects(slow.id) == 1
    assert service.depth(spec.queue) == 0  # acked: nothing comes back for a second run
    assert '"message": "sidecar stopped"' in sidecar.logs()


def test_probes_and_structured_logs(service, uid, sidecars):
    spec = service.declare(make_spec(uid, ["svc.effect"]))
    sidecar = sidecars(spec).wait_ready()
    event = new_event(type="svc.effect", origin=OTHER, data={}, subject="logged")
    service.send_event(event)
    wait_until(lambda: effects(event.id) == 1, 10, "the event")
    assert sidecar.get("/healthz")[0] == 200
    _status, text = sidecar.get("/metrics")
    for name in (
        "consumed_total",
        "applied_total",
        "duplicates_skipped_total",
        "retried_total",
        "dead_lettered_total",
        "handler_duration_seconds_bucket",
        "outbox_backlog",
        "reconnects_total",
    ):
        assert f"rabbitsync_{name}" in text
    assert f'"message": "applied", "event_id": "{event.id}"' in sidecar.logs()


def test_missing_queue_keeps_the_sidecar_unready_until_it_exists(service, uid, sidecars):
    spec = make_spec(uid, ["svc.effect"])  # not declared yet: the operator has not caught up
    sidecar = sidecars(spec)
    wait_until(lambda: sidecar.get("/healthz")[0] == 200, 15, "the sidecar's HTTP server")
    time.sleep(1)
    assert not sidecar.ready()
    service.declare(spec)
    sidecar.wait_ready(timeout=15)


def test_console_script_runs_the_same_sidecar(service, uid, sidecars):
    script = Path(sys.executable).with_name("rabbitsync-sidecar")
    spec = service.declare(make_spec(uid, ["svc.effect"]))
    sidecar = sidecars(spec, command=[str(script)]).wait_ready()
    event = new_event(type="svc.effect", origin=OTHER, data={}, subject="via console script")
    service.send_event(event)
    wait_until(lambda: effects(event.id) == 1, 10, "the event")
    assert sidecar.terminate() == 0
