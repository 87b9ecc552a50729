"""Issue 10 point 7: queues named for this cluster that no SyncSubscription owns are reported, then removed."""

from __future__ import annotations

import dataclasses

import pytest
from opscene import NS, Scene, reasons

from rabbitsync.amqp.fake import FakeQueue
from rabbitsync.operator.brokers import reconcile_broker
from rabbitsync.operator.orphans import OrphanCollector
from rabbitsync.operator.outcome import ObjectView
from rabbitsync.topology import naming

pytestmark = pytest.mark.unit

GONE = naming.queue_name("east", NS, "gone")


def _left_behind(scene: Scene) -> None:
    """What a namespace deletion leaves: a subscription's queues, bound, without the subscription."""
    for name in (GONE, f"{GONE}.retry.1000ms", f"{GONE}.dlq", naming.backfill_status_queue(GONE)):
        scene.broker.queues[name] = FakeQueue({"x-queue-type": "quorum"})


def test_orphans_are_reported_at_once_and_removed_after_the_grace() -> None:
    scene = Scene.ready()
    scene.reconcile(scene.subscribe("orders"))
    owned = naming.backfill_status_queue(naming.queue_name("east", NS, "orders"))
    scene.broker.queues[owned] = FakeQueue({"x-queue-type": "quorum"})  # a backfill of a live subscription
    _left_behind(scene)
    scene.broker.queues[naming.queue_name("west", NS, "gone")] = FakeQueue({})  # the other cluster's: never ours
    collector = OrphanCollector("east", (), grace_seconds=60)
    first = collector.sweep(scene.broker.snapshot(), scene.broker, "b", scene.kube.subscription_names(), now=0)
    status = naming.backfill_status_queue(GONE)  # its backfill's status queue goes with it
    assert first.orphans == first.new == (GONE, status, f"{GONE}.dlq", f"{GONE}.retry.1000ms")
    assert first.removed == () and GONE in scene.broker.queues
    second = collector.sweep(scene.broker.snapshot(), scene.broker, "b", scene.kube.subscription_names(), now=61)
    assert second.new == () and set(second.removed) == set(first.orphans)
    assert not any(q.startswith(GONE) for q in scene.broker.queues)
    assert naming.queue_name("east", NS, "orders") in scene.broker.queues and owned in scene.broker.queues
    assert naming.queue_name("west", NS, "gone") in scene.broker.queues


def test_an_unwatched_namespace_and_a_retained_queue_are_left_alone() -> None:
    scene = Scene.ready()
    _left_behind(scene)
    assert (
        OrphanCollector("east", ("elsewhere",), 0)
        .sweep(scene.broker.snapshot(), scene.broker, "b", set(), now=0)
        .orphans
        == ()
    )
    sub = scene.subscribe("kept", deletionPolicy="retain")
    outcome = scene.reconcile(sub)
    scene.delete(dataclasses.replace(sub, status=outcome.status))
    kept = naming.queue_name("east", NS, "kept")
    sweep = OrphanCollector("east", (), 0).sweep(
        scene.broker.snapshot(), scene.broker, "b", scene.kube.subscription_names(), now=0
    )
    assert kept in scene.broker.queues and not any(q.startswith(kept) for q in sweep.orphans)
    assert set(sweep.removed) == {GONE, f"{GONE}.dlq", f"{GONE}.retry.1000ms", naming.backfill_status_queue(GONE)}


def test_what_the_clusters_subscriptions_share_is_no_orphan_even_with_none_left() -> None:
    scene = Scene.ready()
    sub = scene.subscribe("orders")
    outcome = scene.reconcile(sub)
    assert scene.delete(dataclasses.replace(sub, status=outcome.status)).done
    shared = {q for q in scene.broker.queues if naming.shared_by_cluster(q)}
    assert naming.delay_name("east", "quorum", 1000) in shared and naming.orphaned_retries_name("east") in shared
    sweep = OrphanCollector("east", (), 0).sweep(scene.broker.snapshot(), scene.broker, "b", set(), now=0)
    assert sweep.orphans == () and shared <= set(scene.broker.queues)


def test_the_broker_status_and_events_say_so() -> None:
    scene = Scene.ready()
    _left_behind(scene)
    collector = OrphanCollector("east", (), 3600)
    outcome = reconcile_broker(ObjectView(NS, "default", 1, {}), scene.kube, scene.brokers, orphans=collector)
    orphaned = next(c for c in outcome.status["conditions"] if c["type"] == "OrphanedQueues")
    assert (orphaned["status"], orphaned["reason"]) == ("True", "OrphansFound") and GONE in orphaned["message"]
    assert "OrphanedQueues" in reasons(outcome.notes)
