"""The delay queues a cluster's subscriptions share: who gets what, and what keeps them apart."""

from __future__ import annotations

import pytest

from rabbitsync.api import SyncSubscriptionSpec
from rabbitsync.topology import naming
from rabbitsync.topology.delays import shared_delays
from rabbitsync.topology.desired import desired_topology
from rabbitsync.topology.model import Binding, QueueRole, Topology

pytestmark = pytest.mark.unit


def topology(subscription: str, *, cluster: str = "east", **spec: object) -> Topology:
    return desired_topology(
        cluster=cluster,
        namespace="shop",
        subscription=subscription,
        spec=SyncSubscriptionSpec.model_validate({"service": subscription, "events": ["a"], **spec}),
        exchange="rabbitsync.events",
    )


def test_two_subscriptions_of_a_cluster_share_every_delay_object_and_differ_in_their_own() -> None:
    orders, billing = topology("orders"), topology("billing")
    assert orders.exchanges == billing.exchanges
    assert orders.shared_queues == billing.shared_queues
    own = {q.name for q in orders.queues if not q.role.shared}
    assert own == {orders.main_queue.name, orders.dead_letter_queue.name}
    retries = naming.retries_exchange("east")
    assert Binding(retries, orders.main_queue.name, orders.main_queue.name) in orders.bindings
    assert Binding(retries, orders.main_queue.name, orders.main_queue.name) not in billing.bindings


def test_one_delay_queue_per_distinct_step_and_queue_type() -> None:
    capped = topology("orders", retry={"maxAttempts": 5, "initialBackoffMs": 1000, "maxBackoffMs": 2000})
    assert [q.arguments["x-message-ttl"] for q in capped.retry_queues] == [1000, 2000]
    classic = topology("orders", queueType="classic", retry={"maxAttempts": 2, "initialBackoffMs": 1000})
    assert [q.name for q in classic.retry_queues] == [naming.delay_name("east", "classic", 1000)]
    assert classic.retry_queues[0].name != capped.retry_queues[0].name


def test_other_clusters_never_share_them() -> None:
    east, west = topology("orders"), topology("orders", cluster="west")
    assert not {e.name for e in east.exchanges} & {e.name for e in west.exchanges}
    assert not {q.name for q in east.shared_queues} & {q.name for q in west.shared_queues}


def test_a_delay_queue_returns_a_retry_by_its_own_routing_key_at_least_once() -> None:
    [delay] = topology("orders", retry={"maxAttempts": 2, "initialBackoffMs": 500}).retry_queues
    assert dict(delay.arguments) == {
        "x-queue-type": "quorum",
        "x-message-ttl": 500,
        "x-dead-letter-exchange": naming.retries_exchange("east"),
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }, "no dead-letter routing key: the one the sidecar published with, the main queue's name"


def test_a_retry_that_routes_nowhere_is_kept_apart_not_resent_ahead_of_the_others() -> None:
    shared = shared_delays(cluster="east", queue_type="quorum", main_queue="q", delays=[1000])
    by_name = {e.name: e for e in shared.exchanges}
    orphaned = naming.orphaned_retries_name("east")
    assert by_name[naming.retries_exchange("east")].arguments == {"alternate-exchange": orphaned}
    assert orphaned in by_name
    [kept] = [q for q in shared.queues if q.role is QueueRole.ORPHANED_RETRIES]
    assert kept.name == orphaned and Binding(orphaned, orphaned, "") in shared.bindings


def test_shared_queues_are_no_subscriptions_and_a_subscriptions_are_never_shared() -> None:
    orders = topology("orders")
    assert all(naming.shared_by_cluster(q.name) for q in orders.shared_queues)
    assert not any(naming.shared_by_cluster(q.name) for q in orders.queues if not q.role.shared)
    legacy = naming.retry_queue_name(orders.main_queue.name, 1000)
    status = orders.main_queue.name + naming.BACKFILL_STATUS_SUFFIX
    assert not naming.shared_by_cluster(legacy) and not naming.shared_by_cluster(status)
