"""The drift sweep: one listing per broker, every verified subscription compared, only the drifted reconciled."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from opscene import NS, SETTINGS, Scene

from rabbitsync.amqp.fake import FakeExchange, FakeQueue
from rabbitsync.amqp.snapshot import BrokerSnapshot, owner_of
from rabbitsync.operator import drift
from rabbitsync.operator.brokers import reconcile_broker
from rabbitsync.operator.kube.indexes import IndexedBroker
from rabbitsync.operator.orphans import OrphanCollector
from rabbitsync.operator.outcome import ObjectView
from rabbitsync.operator.subscription import Subscription, topology_for
from rabbitsync.topology import naming
from rabbitsync.transport.errors import BrokerUnreachable

pytestmark = pytest.mark.unit

BROKER = ObjectView(NS, "default", 1, {})


def _synced(scene: Scene, count: int) -> list[Subscription]:
    """``count`` subscriptions reconciled to Ready, as the index holds them (status dropped)."""
    subs = []
    for i in range(count):
        sub = scene.subscribe(f"orders-{i}")
        outcome = scene.reconcile(sub)
        body = _body(dataclasses.replace(sub, status=outcome.status))
        [(broker, indexed)] = drift.synced_by_broker(body).items()
        assert broker == "default"
        subs.append(indexed)
    return subs


def _body(sub: Subscription, **meta: Any) -> dict[str, Any]:
    metadata = {"namespace": sub.namespace, "name": sub.name, "generation": sub.generation, **meta}
    return {"metadata": metadata, "spec": {"broker": "default", **sub.raw_spec}, "status": dict(sub.status)}


def _sweep(scene: Scene, subs: list[Subscription], orphans: OrphanCollector | None = None) -> list[tuple[str, str]]:
    """The broker's resync with its drift sweep over ``subs``: the subscriptions it asked to reconcile."""
    requested: list[tuple[str, str]] = []
    sweep = drift.Candidates(tuple(subs), SETTINGS, lambda ns, name: requested.append((ns, name)))
    reconcile_broker(BROKER, scene.kube, scene.brokers, settings=SETTINGS, orphans=orphans, sweep=sweep)
    return requested


def test_one_listing_checks_every_subscription_and_flags_only_the_drifted() -> None:
    scene = Scene.ready()
    subs = _synced(scene, 50)
    observed_before = scene.broker.observations

    assert _sweep(scene, subs) == []
    # One observe is the broker's own exchange check; none per subscription.
    assert scene.broker.snapshots == 1 and scene.broker.observations == observed_before + 1, "no per-object observe"

    main = naming.queue_name("east", NS, "orders-7")
    del scene.broker.queues[f"{main}.dlq"]
    scene.broker.bindings = {b for b in scene.broker.bindings if b.queue != naming.queue_name("east", NS, "orders-9")}
    assert _sweep(scene, subs) == [(NS, "orders-7"), (NS, "orders-9")]
    assert scene.broker.snapshots == 2


def test_the_shared_delay_objects_in_the_listing_are_no_drift_and_a_missing_one_is_everyones() -> None:
    scene = Scene.ready()
    subs = _synced(scene, 3)
    delay = naming.delay_name("east", "quorum", 1000)
    assert delay in scene.broker.queues and naming.retries_exchange("east") in scene.broker.exchanges
    assert _sweep(scene, subs) == [], "found by name in the listing, though no subscription's pattern matches them"
    del scene.broker.queues[delay]
    scene.broker.bindings = {b for b in scene.broker.bindings if b.queue != delay}
    assert _sweep(scene, subs) == [(NS, "orders-0"), (NS, "orders-1"), (NS, "orders-2")]


def test_a_missing_shared_exchange_is_drift_and_so_is_a_subscriptions_binding_to_the_retries_exchange() -> None:
    scene = Scene.ready()
    subs = _synced(scene, 2)
    retries = naming.retries_exchange("east")
    scene.broker.bindings.discard(
        next(b for b in scene.broker.bindings if b.exchange == retries and b.queue.endswith("orders-1"))
    )
    assert _sweep(scene, subs) == [(NS, "orders-1")]
    scene.reconcile(scene.subscribe("orders-1"))  # the reconcile the sweep asked for
    assert _sweep(scene, subs) == []
    del scene.broker.exchanges[naming.delay_name("east", "quorum", 1000)]
    assert _sweep(scene, subs) == [(NS, "orders-0"), (NS, "orders-1")]


def test_a_backfill_status_queue_holding_reports_is_neither_drift_nor_a_count_to_refresh() -> None:
    scene = Scene.ready()
    subs = _synced(scene, 2)
    status = naming.backfill_status_queue(naming.queue_name("east", NS, "orders-1"))
    scene.broker.queues[status] = FakeQueue({"x-queue-type": "quorum"}, messages=3)
    assert _sweep(scene, subs) == []
    assert status in scene.broker.queues, "kept, as long as its subscription exists"


def test_the_drift_sweep_and_the_orphan_collector_share_one_listing_whatever_the_count() -> None:
    """Issue 11 point 3: a resync costs the same broker calls with 0 subscriptions as with 200."""
    calls = []
    for count in (0, 200):
        scene = Scene.ready()
        subs = _synced(scene, count)
        _sweep(scene, subs, OrphanCollector("east", (), 3600))  # the first resync declares the exchange
        before = (scene.broker.snapshots, scene.broker.observations, len(scene.broker.applied))
        _sweep(scene, subs, OrphanCollector("east", (), 3600))
        calls.append(
            (
                scene.broker.snapshots - before[0],
                scene.broker.observations - before[1],
                len(scene.broker.applied) - before[2],
            )
        )
    # The one plan applied is the trace stream's idempotent declaration, once per broker.
    assert calls[0] == calls[1] == (1, 1, 1), "one listing, one exchange check, one trace declaration"


def test_an_unreachable_broker_asks_every_subscription_to_report_it() -> None:
    scene = Scene.ready()
    subs = _synced(scene, 3)
    scene.broker_error = BrokerUnreachable("down")
    assert _sweep(scene, subs) == [(NS, "orders-0"), (NS, "orders-1"), (NS, "orders-2")]


def test_a_broker_that_answers_but_refuses_the_exchange_asks_nothing() -> None:
    scene = Scene.ready()
    subs = _synced(scene, 3)
    scene.broker.exchanges["rabbitsync.events"] = FakeExchange("fanout")
    assert _sweep(scene, subs) == [] and scene.broker.snapshots == 0


def test_an_unresolvable_broker_is_not_swept() -> None:
    scene = Scene.ready()
    subs = _synced(scene, 3)
    scene.kube.sync_brokers.clear()
    assert _sweep(scene, subs) == [] and scene.broker.snapshots == 0


def test_only_verified_live_subscriptions_are_indexed() -> None:
    scene = Scene.ready()
    sub = scene.subscribe("orders")
    assert drift.synced_by_broker(_body(sub)) == {}, "never verified"
    verified = dataclasses.replace(sub, status=scene.reconcile(sub).status)
    assert drift.synced_by_broker(_body(verified, deletionTimestamp="2026-11-30T00:00:00Z")) == {}
    assert drift.synced_by_broker(_body(verified, generation=2)) == {}, "a new generation is not verified yet"
    [indexed] = drift.synced_by_broker(_body(verified)).values()
    # The scene's sidecar consumes: one consumer.
    assert (indexed.name, indexed.status) == ("orders", {"queueDepth": 0, "consumers": 1, "deadLettered": 0})


def test_candidates_follow_reference_resolution() -> None:
    mine = Subscription(NS, "a", 1, {}, {})
    other_ns = Subscription("other", "b", 1, {}, {})
    index = {"default": [mine, other_ns]}
    assert drift.candidates(index, {}, BROKER) == [mine]
    cluster_broker = ObjectView("", "default", 1, {})
    # In NS a SyncBroker named "default" wins over the ClusterSyncBroker of that name.
    brokers = {(NS, "default"): [IndexedBroker({}, deleting=False)]}
    assert drift.candidates(index, brokers, cluster_broker) == [other_ns]


@pytest.mark.parametrize(
    "queue",
    [
        "east.shop.orders",
        "east.shop.orders.retry.1000ms",
        "east.shop.orders.dlq",
        "east.shop.orders-v2.dlq",
        "east.shop.orders.@backfill-status",
    ],
)
def test_owner_agrees_with_the_observation_pattern(queue: str) -> None:
    import re

    owner = owner_of(queue)
    assert re.match(naming.owned_queue_pattern(owner), queue)


def test_snapshot_projects_what_observe_sees() -> None:
    scene = Scene.ready()
    subs = _synced(scene, 2)
    scene.broker.bindings.add(next(iter(scene.broker.bindings)).__class__("rabbitsync.events", "stray", "x"))
    snapshot: BrokerSnapshot = scene.broker.snapshot()
    for sub in subs:
        main = naming.queue_name("east", NS, sub.name)
        assert snapshot.observed_for("rabbitsync.events", main) == scene.broker.observe("rabbitsync.events", main)
        topology = topology_for(SETTINGS, sub, sub.spec(), "rabbitsync.events")
        shared = {
            "shared": [q.name for q in topology.shared_queues],
            "exchanges": [*(e.name for e in topology.exchanges), "missing"],
        }
        projected = snapshot.observed_for("rabbitsync.events", main, **shared)
        assert projected == scene.broker.observe("rabbitsync.events", main, **shared)
        assert set(projected.queues) == {q.name for q in topology.queues} and "missing" not in projected.exchanges
        assert projected.exchanges[naming.retries_exchange("east")].arguments == {
            "alternate-exchange": naming.orphaned_retries_name("east")
        }


def test_moved_counts_are_refreshed_by_a_reconcile_idle_ones_cost_nothing() -> None:
    scene = Scene.ready()
    subs = _synced(scene, 3)
    scene.broker.queues[naming.queue_name("east", NS, "orders-1")].messages = 4
    requested: list[tuple[str, str]] = []
    sweep = drift.Candidates(tuple(subs), SETTINGS, lambda ns, name: requested.append((ns, name)))
    result = drift.sweep_listing(scene.broker.snapshot(), "rabbitsync.events", sweep, "default")
    assert (result.checked, result.drifted, result.stale) == (3, (), ((NS, "orders-1"),))
    assert requested == [(NS, "orders-1")]


def test_counts_are_compared_with_the_status_last_written_not_the_indexs_lagging_copy() -> None:
    """At 1,000 subscriptions kopf's index was behind the operator's own status patches: a third of the
    subscriptions were reconciled at every sweep for counts they no longer had."""
    scene = Scene.ready()
    [lagging, current, failed] = [dataclasses.replace(s, uid=f"uid-{i}") for i, s in enumerate(_synced(scene, 3))]
    stale_copy = {**lagging.status, "consumers": 0}  # indexed before its consumer attached
    written = {
        lagging.uid: {**_verified(scene, lagging), "consumers": 1},
        failed.uid: {**_verified(scene, failed), "observedGeneration": 0},  # not verified any more
    }
    subs = drift.as_last_written([dataclasses.replace(lagging, status=stale_copy), current, failed], written.get)
    assert [s.name for s in subs] == [lagging.name, current.name], "the failed one is not the sweep's"
    requested: list[tuple[str, str]] = []
    sweep = drift.Candidates(tuple(subs), SETTINGS, lambda ns, name: requested.append((ns, name)))
    assert drift.sweep_listing(scene.broker.snapshot(), "rabbitsync.events", sweep, "default").stale == ()
    assert requested == []


def _verified(scene: Scene, sub: Subscription) -> dict[str, Any]:
    """The whole status a reconcile of ``sub`` writes (the index keeps only the counts)."""
    return dict(scene.reconcile(scene.subscribe(sub.name)).status)


def test_a_slow_listing_on_a_broker_that_answers_asks_nothing() -> None:
    """The listing of thousands of queues timed out on a loaded broker: no fan-out of reconciles onto it."""
    scene = Scene.ready()
    subs = _synced(scene, 3)

    def slow() -> BrokerSnapshot:
        raise BrokerUnreachable("timed out")

    scene.broker.snapshot = slow  # type: ignore[method-assign]
    assert _sweep(scene, subs) == []
