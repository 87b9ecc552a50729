"""Shared objects taken from memory while fresh: how much they save, and when they are looked at again."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import pytest

from rabbitsync.amqp.fake import FakeBroker
from rabbitsync.amqp.port import ApplyOutcome
from rabbitsync.amqp.shared import RecentShared, touches_shared
from rabbitsync.amqp.sync import observe_and_sync
from rabbitsync.api import SyncSubscriptionSpec
from rabbitsync.topology.desired import desired_topology
from rabbitsync.topology.diff import Plan, diff
from rabbitsync.topology.model import Observed, Topology

pytestmark = pytest.mark.unit

BROKER = "http://broker:15672/%2F"


def topology(subscription: str) -> Topology:
    return desired_topology(
        cluster="east",
        namespace="shop",
        subscription=subscription,
        spec=SyncSubscriptionSpec.model_validate({"service": subscription, "events": ["a"]}),
        exchange="rabbitsync.events",
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Looking:
    """An ``observe`` that records which shared objects each call asked about."""

    def __init__(self, observe: Callable[..., Observed]) -> None:
        self.observe = observe
        self.asked: list[set[str]] = []

    def __call__(
        self,
        exchange: str,
        main_queue: str,
        queues: Collection[str] | None = None,
        *,
        shared: Collection[str] = (),
        exchanges: Collection[str] = (),
    ) -> Observed:
        self.asked.append({*shared, *exchanges, *(q for q in queues or () if "@" in q)})
        return self.observe(exchange, main_queue, queues, shared=shared, exchanges=exchanges)


def names(desired: Topology) -> dict[str, Any]:
    """What ``observe_and_sync`` asks about: its own queues by name, the shared ones as shared."""
    return {
        "queues": [q.name for q in desired.queues if not q.role.shared],
        "shared": [q.name for q in desired.shared_queues],
        "exchanges": [e.name for e in desired.exchanges],
    }


def observe(memory: RecentShared, looking: Looking, desired: Topology) -> Observed:
    return memory.observe(BROKER, looking, desired.exchange, desired.main_queue.name, **names(desired))


def synced(*subscriptions: str) -> FakeBroker:
    broker = FakeBroker()
    for name in subscriptions:
        observe_and_sync(broker, topology(name))
    return broker


def test_a_second_subscription_is_observed_without_the_shared_objects_and_answers_the_same() -> None:
    broker = synced("orders", "billing")
    memory, looking = RecentShared(fresh_seconds=30, clock=Clock()), Looking(broker.observe)
    orders, billing = topology("orders"), topology("billing")
    observe(memory, looking, orders)
    remembered = observe(memory, looking, billing)
    assert looking.asked[0] and looking.asked[1] == set(), "the second observation asks about no shared object"
    assert remembered == broker.observe(billing.exchange, billing.main_queue.name, **names(billing))
    assert diff(billing, remembered).empty


class Remembering(FakeBroker):
    """A broker that observes through ``memory``, as ``RabbitBroker`` does in the operator."""

    def __init__(self, memory: RecentShared) -> None:
        super().__init__()
        self.memory = memory
        self.looking = Looking(super().observe)

    def observe(self, exchange: str, main_queue: str, queues: Collection[str] | None = None, **kwargs: Any) -> Observed:
        return self.memory.observe(BROKER, self.looking, exchange, main_queue, queues, **kwargs)

    def apply(self, plan: Plan) -> ApplyOutcome:
        self.memory.applied(BROKER, plan)
        return super().apply(plan)


def test_syncing_a_second_subscription_looks_at_no_shared_object() -> None:
    broker = Remembering(RecentShared(fresh_seconds=30, clock=Clock()))
    assert observe_and_sync(broker, topology("orders")).verified
    broker.looking.asked.clear()
    assert observe_and_sync(broker, topology("billing")).verified
    assert broker.looking.asked == [set(), set()], "observed before and after applying, neither time a shared object"


def test_its_own_queues_are_always_looked_at() -> None:
    broker = synced("orders", "billing")
    memory, looking = RecentShared(fresh_seconds=30, clock=Clock()), Looking(broker.observe)
    observe(memory, looking, topology("orders"))
    billing = topology("billing")
    del broker.queues[billing.dead_letter_queue.name]
    plan = diff(billing, observe(memory, looking, billing))
    assert [q.name for q in plan.declare_queues] == [billing.dead_letter_queue.name]


def test_a_shared_object_deleted_is_seen_once_stale_or_forgotten() -> None:
    broker, clock = synced("orders"), Clock()
    memory, looking = RecentShared(fresh_seconds=30, clock=clock), Looking(broker.observe)
    orders = topology("orders")
    observe(memory, looking, orders)
    delay = orders.retry_queues[0].name
    del broker.queues[delay]
    clock.now = 29.0
    assert diff(orders, observe(memory, looking, orders)).empty, "fresh: taken from memory"
    clock.now = 30.0
    assert [q.name for q in diff(orders, observe(memory, looking, orders)).declare_queues] == [delay]
    # Recorded missing now; after a listing (the sweep's) it is looked at again.
    broker.queues[delay] = broker.queues[orders.retry_queues[1].name]
    memory.forget(BROKER)
    assert diff(orders, observe(memory, looking, orders)).empty


def test_a_plan_that_declares_a_shared_object_makes_the_next_observation_look() -> None:
    broker = FakeBroker()
    memory, looking = RecentShared(fresh_seconds=30, clock=Clock()), Looking(broker.observe)
    orders = topology("orders")
    plan = diff(orders, observe(memory, looking, orders))
    memory.applied(BROKER, plan)
    broker.apply(plan)
    assert diff(orders, observe(memory, looking, orders)).empty
    assert len(looking.asked) == 2 and looking.asked[1]


def test_what_touches_shared_objects() -> None:
    broker = synced("orders")
    billing = topology("billing")
    # Declared with the shared ones present: only the subscription's own objects.
    present = broker.observe(billing.exchange, billing.main_queue.name, **names(billing))
    assert not touches_shared(diff(billing, present))
    assert touches_shared(diff(billing, Observed(exchange=None, queues={}, bindings=frozenset())))
    assert not touches_shared(Plan())


def test_brokers_and_sets_of_shared_objects_are_remembered_apart() -> None:
    broker = synced("orders")
    memory, looking = RecentShared(fresh_seconds=30, clock=Clock()), Looking(broker.observe)
    orders = topology("orders")
    observe(memory, looking, orders)
    kwargs: dict[str, Any] = {"shared": [orders.retry_queues[0].name], "exchanges": []}
    memory.observe(BROKER, looking, orders.exchange, orders.main_queue.name, None, **kwargs)
    memory.observe("http://other:15672/%2F", looking, orders.exchange, orders.main_queue.name, None, **kwargs)
    assert all(looking.asked), "another set of shared objects, another broker: each looked at"
