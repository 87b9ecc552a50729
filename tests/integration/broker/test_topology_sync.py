"""Topology reconciliation against a real RabbitMQ: apply, observe, drift repair, isolation, failures."""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pika
import pytest

from rabbitsync.amqp import (
    AccessRefused,
    BrokerEndpoint,
    BrokerUnreachable,
    RabbitBroker,
    Timeouts,
    delete_topology,
    observe_and_sync,
)
from rabbitsync.api import SyncSubscriptionSpec
from rabbitsync.topology import naming
from rabbitsync.topology.desired import desired_topology
from rabbitsync.topology.diff import Plan
from rabbitsync.topology.model import Binding, Observed, Topology

pytestmark = pytest.mark.integration


class Env:
    """One test's view of the broker: unique exchange and cluster names, cleaned up afterwards."""

    def __init__(self, broker, uid: str) -> None:  # type: ignore[no-untyped-def]
        self.handle = broker
        self.uid = uid
        self.exchange = f"rabbitsync.test.{uid}"
        self.rabbit = RabbitBroker(BrokerEndpoint(broker.amqp_url, broker.management_url))
        self.created: list[Topology] = []

    def topology(self, events: list[str], *, cluster: str = "east", **spec: object) -> Topology:
        body = {"service": "orders", "events": events} | spec
        topo = desired_topology(
            cluster=f"{cluster}{self.uid}",
            namespace="shop",
            subscription="orders",
            spec=SyncSubscriptionSpec.model_validate(body),
            exchange=self.exchange,
        )
        self.created.append(topo)
        return topo

    def http(self, method: str, path: str) -> object:
        parts = urllib.parse.urlsplit(self.handle.management_url)
        auth = base64.b64encode(f"{parts.username}:{parts.password}".encode()).decode()
        request = urllib.request.Request(
            f"{parts.scheme}://{parts.hostname}:{parts.port}{path}",
            method=method,
            headers={"Authorization": f"Basic {auth}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def delete_queue_out_of_band(self, queue: str) -> None:
        self.http("DELETE", f"/api/queues/%2F/{urllib.parse.quote(queue, safe='')}")

    def delete_binding_out_of_band(self, binding: Binding) -> None:
        q = urllib.parse.quote
        path = f"/api/bindings/%2F/e/{q(binding.exchange, safe='')}/q/{q(binding.queue, safe='')}"
        [found] = [b for b in self.http("GET", path) if b["routing_key"] == binding.routing_key]  # type: ignore[attr-defined]
        self.http("DELETE", f"{path}/{q(found['properties_key'], safe='')}")

    def channel(self) -> pika.adapters.blocking_connection.BlockingChannel:
        self._connection = pika.BlockingConnection(pika.URLParameters(self.handle.amqp_url))
        return self._connection.channel()

    def observe(self, topo: Topology) -> Observed:
        """Everything ``topo`` names, its cluster's shared objects included, as the sync observes it."""
        return self.rabbit.observe(
            topo.exchange,
            topo.main_queue.name,
            shared=[q.name for q in topo.shared_queues],
            exchanges=[e.name for e in topo.exchanges],
        )

    def cleanup(self) -> None:
        for topo in self.created:
            delete_topology(self.rabbit, topo)
        channel = self.channel()
        # The shared objects are no subscription's to delete; this test's clusters are its own.
        for topo in self.created:
            for queue in topo.shared_queues:
                channel.queue_delete(queue.name)
            for exchange in topo.exchanges:
                channel.exchange_delete(exchange.name)
        channel.exchange_delete(self.exchange)
        self._connection.close()


@pytest.fixture
def env(broker, uid: str) -> Iterator[Env]:  # type: ignore[no-untyped-def]
    environment = Env(broker, uid)
    yield environment
    environment.cleanup()


@pytest.mark.parametrize("queue_type", ["quorum", "classic"])
def test_apply_creates_everything_and_a_second_sync_does_nothing(env: Env, queue_type: str) -> None:
    topo = env.topology(["restaurant.created", "menu.updated"], queueType=queue_type)
    first = observe_and_sync(env.rabbit, topo)
    assert first.verified and not first.conflicts
    # exchanges, queues, bindings; no policy (the delivery limit of a quorum main queue is an argument)
    assert len(first.changes) == 1 + len(topo.exchanges) + len(topo.queues) + len(topo.bindings), first.changes
    # Its own: main queue and DLQ, bound for two event types, the backfill key and its returning retries.
    own = env.rabbit.observe(topo.exchange, topo.main_queue.name)
    assert set(own.queues) == {topo.main_queue.name, topo.dead_letter_queue.name}
    assert len(own.bindings) == 4
    # Shared: the default schedule's four delays, each a fanout exchange and its queue, the retries
    # exchange and the orphaned retries' exchange and queue.
    assert len(topo.retry_queues) == 4 and len(topo.exchanges) == 4 + 2
    observed = env.observe(topo)
    assert {n: dict(q.arguments) for n, q in observed.queues.items()} == {
        q.name: dict(q.arguments) for q in topo.queues
    }
    assert observed.bindings == topo.bindings
    assert {n: (e.type, dict(e.arguments)) for n, e in observed.exchanges.items()} == {
        e.name: (e.type, dict(e.arguments)) for e in topo.exchanges
    }
    again = observe_and_sync(env.rabbit, topo, previously_synced=True)
    assert again.verified and again.changes == () and again.drift == ()


def test_out_of_band_deletions_are_restored_and_reported_as_drift(env: Env) -> None:
    topo = env.topology(["restaurant.created", "menu.updated"])
    observe_and_sync(env.rabbit, topo)
    env.delete_queue_out_of_band(topo.dead_letter_queue.name)
    env.delete_binding_out_of_band(Binding(topo.exchange, topo.main_queue.name, "shop.menu.updated"))
    result = observe_and_sync(env.rabbit, topo, previously_synced=True)
    assert result.verified
    assert set(result.drift) == {
        f"declared queue {topo.dead_letter_queue.name}",
        f"bound binding {topo.exchange} -> {topo.main_queue.name} (shop.menu.updated)",
    }
    observed = env.observe(topo)
    assert set(observed.queues) == {q.name for q in topo.queues} and observed.bindings == topo.bindings


def test_a_shared_delay_queue_or_exchange_deleted_out_of_band_is_restored(env: Env) -> None:
    topo = env.topology(["a"])
    observe_and_sync(env.rabbit, topo)
    delay = topo.retry_queues[0].name
    env.delete_queue_out_of_band(delay)
    env.http("DELETE", f"/api/exchanges/%2F/{urllib.parse.quote(naming.retries_exchange(f'east{env.uid}'), safe='')}")
    result = observe_and_sync(env.rabbit, topo, previously_synced=True)
    assert result.verified
    assert f"declared queue {delay}" in result.drift
    assert f"declared exchange {naming.retries_exchange(f'east{env.uid}')}" in result.drift
    assert env.observe(topo).bindings == topo.bindings


def test_changing_events_binds_and_unbinds_exactly_the_difference(env: Env) -> None:
    observe_and_sync(env.rabbit, env.topology(["a", "b", "c"]))
    after = env.topology(["b", "c", "d"])
    result = observe_and_sync(env.rabbit, after)
    main = after.main_queue.name
    assert set(result.changes) == {
        f"bound binding {after.exchange} -> {main} (shop.d)",
        f"unbound binding {after.exchange} -> {main} (shop.a)",
    }
    assert result.drift == ()
    assert env.observe(after).bindings == after.bindings


def test_same_subscription_in_two_clusters_is_two_queues_deleting_one_keeps_the_other(env: Env) -> None:
    east = env.topology(["a"], cluster="east")
    west = env.topology(["a"], cluster="west")
    observe_and_sync(env.rabbit, east)
    observe_and_sync(env.rabbit, west)
    assert east.main_queue.name != west.main_queue.name
    deleted = delete_topology(env.rabbit, east)
    assert len(deleted) == 2, "its main queue and DLQ"
    assert env.rabbit.observe(east.exchange, east.main_queue.name).queues == {}
    assert set(env.observe(east).queues) == {q.name for q in east.shared_queues}, "shared: never deleted"
    kept = env.observe(west)
    assert set(kept.queues) == {q.name for q in west.queues} and kept.bindings == west.bindings
    assert kept.exchange is not None, "the shared exchange is never deleted"


def _take(channel: pika.adapters.blocking_connection.BlockingChannel, queue: str, count: int) -> list[bytes]:
    """``count`` messages off ``queue``, waiting up to 10 s for them; fewer if they never come."""
    got: list[bytes] = []
    deadline = time.monotonic() + 10
    while len(got) < count and time.monotonic() < deadline:
        method, _, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            time.sleep(0.1)
        else:
            got.append(body)
    return got


def _retry(channel: pika.adapters.blocking_connection.BlockingChannel, delay: str, queue: str, body: bytes) -> None:
    """What the sidecar does with a failed delivery: into the delay exchange, the main queue as routing key."""
    channel.basic_publish(delay, queue, body, pika.BasicProperties(delivery_mode=2), mandatory=True)


@pytest.mark.parametrize("queue_type", ["quorum", "classic"])
def test_retries_of_two_subscriptions_share_a_delay_queue_and_each_returns_to_its_own_queue(
    env: Env, queue_type: str
) -> None:
    retry = {"maxAttempts": 2, "initialBackoffMs": 100, "maxBackoffMs": 100}
    one = env.topology(["a"], retry=retry, queueType=queue_type)
    two = desired_topology(
        cluster=f"east{env.uid}",
        namespace="shop",
        subscription="payments",
        spec=SyncSubscriptionSpec.model_validate(
            {"service": "payments", "events": ["a"], "retry": retry, "queueType": queue_type}
        ),
        exchange=env.exchange,
    )
    env.created.append(two)
    observe_and_sync(env.rabbit, one)
    observe_and_sync(env.rabbit, two)
    [delay] = one.retry_queues
    assert two.retry_queues == (delay,), "one delay queue for the cluster"
    channel = env.channel()
    channel.confirm_delivery()
    _retry(channel, delay.name, one.main_queue.name, b"one")
    _retry(channel, delay.name, two.main_queue.name, b"two")
    assert _take(channel, one.main_queue.name, 1) == [b"one"]
    assert _take(channel, two.main_queue.name, 1) == [b"two"]
    # Both expired together: a copy routed to the wrong queue would be there by now.
    for topo in (one, two):
        assert channel.queue_declare(topo.main_queue.name, passive=True).method.message_count == 0


def test_retries_of_a_deleted_subscription_never_hold_back_the_others(env: Env) -> None:
    """A quorum delay queue dead-letters at-least-once: a message that routes nowhere is retried ahead of
    those behind it. Without the retries exchange's alternate exchange, 100 retries of a deleted
    subscription held back every later retry of the cluster."""
    retry = {"maxAttempts": 2, "initialBackoffMs": 2000, "maxBackoffMs": 2000}  # none expires before the delete
    gone = env.topology(["a"], retry=retry)
    kept = desired_topology(
        cluster=f"east{env.uid}",
        namespace="shop",
        subscription="payments",
        spec=SyncSubscriptionSpec.model_validate({"service": "payments", "events": ["a"], "retry": retry}),
        exchange=env.exchange,
    )
    env.created.append(kept)
    observe_and_sync(env.rabbit, gone)
    observe_and_sync(env.rabbit, kept)
    [delay] = gone.retry_queues
    channel = env.channel()
    channel.confirm_delivery()
    for i in range(100):
        _retry(channel, delay.name, gone.main_queue.name, b"orphan %d" % i)
    delete_topology(env.rabbit, gone)
    _retry(channel, delay.name, kept.main_queue.name, b"still retried")
    assert _take(channel, kept.main_queue.name, 1) == [b"still retried"]
    orphaned = naming.orphaned_retries_name(f"east{env.uid}")
    assert len(_take(channel, orphaned, 100)) == 100, "kept where an operator can look at them"


def test_a_delay_queue_of_an_older_release_is_retired_once_its_retries_came_back(env: Env) -> None:
    """The migration: releases before shared delay queues declared them per subscription. Such a queue
    is not desired any more; a retry waiting in it still returns to the main queue, and the queue is
    deleted only once it is empty."""
    topo = env.topology(["a"], retry={"maxAttempts": 2, "initialBackoffMs": 500, "maxBackoffMs": 500})
    assert observe_and_sync(env.rabbit, topo).verified
    main = topo.main_queue
    legacy = naming.retry_queue_name(main.name, 1500)
    channel = env.channel()
    channel.queue_declare(
        legacy,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-message-ttl": 1500,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": main.name,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )
    channel.confirm_delivery()
    channel.basic_publish("", legacy, b"waiting", pika.BasicProperties(delivery_mode=2))
    result = observe_and_sync(env.rabbit, topo)
    assert result.kept_not_empty == (legacy,) and result.verified
    assert _take(channel, main.name, 1) == [b"waiting"], "returned the way it was sent"
    deadline = time.monotonic() + 15
    while legacy in env.rabbit.observe(topo.exchange, main.name).queues:
        assert time.monotonic() < deadline, "the emptied legacy queue was never retired"
        observe_and_sync(env.rabbit, topo)
        time.sleep(0.5)


def test_queue_with_other_arguments_is_reported_not_redeclared(env: Env) -> None:
    topo = env.topology(["a"])
    env.channel().queue_declare(topo.main_queue.name, durable=True, arguments={"x-queue-type": "classic"})
    result = observe_and_sync(env.rabbit, topo)
    assert not result.verified
    assert [c.split(":")[0] for c in result.conflicts] == [f"queue {topo.main_queue.name}"]


def test_unreachable_broker_fails_fast_with_a_temporary_error() -> None:
    closed = RabbitBroker(
        BrokerEndpoint("amqp://guest:guest@127.0.0.1:1/", "http://guest:guest@127.0.0.1:1"),
        Timeouts(connect_s=1, operation_s=2),
    )
    topo = desired_topology(
        cluster="x",
        namespace="y",
        subscription="z",
        spec=SyncSubscriptionSpec(service="s", events=["a"]),
        exchange="e",
    )
    started = time.monotonic()
    with pytest.raises(BrokerUnreachable) as observed:
        observe_and_sync(closed, topo)
    with pytest.raises(BrokerUnreachable):
        closed.apply(Plan(declare_exchange="e"))
    assert time.monotonic() - started < 5
    assert observed.value.permanent is False


def test_wrong_credentials_are_a_permanent_access_refused(broker) -> None:  # type: ignore[no-untyped-def]
    def with_bad_password(url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        return parts._replace(netloc=f"nobody:wrong@{parts.hostname}:{parts.port}").geturl()

    endpoint = BrokerEndpoint(with_bad_password(broker.amqp_url), with_bad_password(broker.management_url))
    rabbit = RabbitBroker(endpoint)
    with pytest.raises(AccessRefused) as observed:
        rabbit.observe("e", "q")
    assert observed.value.permanent
    with pytest.raises(AccessRefused):
        rabbit.apply(Plan(declare_exchange="e"))


def _queue(env: Env, name: str) -> dict[str, Any]:
    return env.http("GET", f"/api/queues/%2F/{urllib.parse.quote(name, safe='')}")  # type: ignore[return-value]


def _returns_before_dead_lettering(env: Env, topo: Topology) -> int:
    """Publish one message to ``topo``'s main queue and hand it back, as a dying consumer would, until the
    broker dead-letters it; how often it came back."""
    main, dlq = topo.main_queue.name, topo.dead_letter_queue.name
    channel = env.channel()
    channel.confirm_delivery()
    channel.basic_publish("", main, b"poison", pika.BasicProperties(delivery_mode=2))
    returned = 0
    while True:
        method, _, _ = channel.basic_get(main)
        if method is None:
            break
        channel.basic_reject(method.delivery_tag, requeue=True)
        returned += 1
        assert returned <= 100, "the message kept coming back"
    deadline = time.monotonic() + 10
    method = props = None
    while method is None and time.monotonic() < deadline:
        method, props, _ = channel.basic_get(dlq, auto_ack=True)
        time.sleep(0.1)
    assert method is not None and props is not None, "the poison message was dropped, not dead-lettered"
    assert props.headers["x-first-death-reason"] == "delivery_limit", props.headers
    return returned


def _effective_limit(env: Env, queue: str, expected: object) -> None:
    """Wait until ``queue``'s effective policy sets ``expected`` (``None``: no policy applies)."""
    deadline = time.monotonic() + 15
    while (_queue(env, queue).get("effective_policy_definition") or {}).get("delivery-limit") != expected:
        assert time.monotonic() < deadline, f"{queue}: policy delivery-limit never became {expected}"
        time.sleep(0.2)


def test_a_message_returned_more_often_than_the_delivery_limit_is_dead_lettered(env: Env) -> None:
    """Issue 10 point 2: the limit is explicit (3.x has none, 4.x defaults to 20). Issue 11: it is the
    queue's argument, not a policy per queue (each policy PUT re-matches the whole vhost)."""
    topo = env.topology(["a"], retry={"maxAttempts": 1})
    assert observe_and_sync(env.rabbit, topo).verified
    main = _queue(env, topo.main_queue.name)
    assert main["arguments"]["x-delivery-limit"] == 1 + 20, main["arguments"]
    assert not main.get("policy"), main
    assert _returns_before_dead_lettering(env, topo) in (21, 22)


def test_a_policy_lowers_the_declared_limit_and_goes_when_no_longer_needed(env: Env) -> None:
    """Fewer attempts on an existing queue: the broker takes the lower of argument and policy."""
    declared = env.topology(["a"], retry={"maxAttempts": 10})
    assert observe_and_sync(env.rabbit, declared).verified
    lowered = env.topology(["a"], retry={"maxAttempts": 1})
    result = observe_and_sync(env.rabbit, lowered)
    assert result.verified and not result.conflicts, result
    main = lowered.main_queue.name
    _effective_limit(env, main, 1 + 20)
    assert _queue(env, main)["arguments"]["x-delivery-limit"] == 10 + 20
    assert _returns_before_dead_lettering(env, lowered) in (21, 22)

    assert observe_and_sync(env.rabbit, declared).verified
    _effective_limit(env, main, None)
    assert main not in {p["name"] for p in env.http("GET", "/api/policies/%2F")}  # type: ignore[attr-defined]


def test_a_queue_of_an_older_release_keeps_its_limit_by_policy(env: Env) -> None:
    """Declared without the argument (releases before issue 11): not a conflict, and its policy is put back
    when it goes missing."""
    topo = env.topology(["a"], retry={"maxAttempts": 3})
    main = topo.main_queue
    legacy = {k: v for k, v in main.arguments.items() if k != "x-delivery-limit"}
    env.channel().queue_declare(main.name, durable=True, arguments=legacy)
    result = observe_and_sync(env.rabbit, topo)
    assert result.verified and not result.conflicts, result
    assert f"set policy {main.name} {{'delivery-limit': 23}}" in result.changes, result.changes
    _effective_limit(env, main.name, 3 + 20)


def test_one_listing_serves_the_drift_sweep_and_the_orphan_collector(env: Env) -> None:
    """Issue 11 point 3 against the real management API: the listing shows drift and orphans, and only a
    removal costs a call of its own."""
    from rabbitsync.operator.orphans import OrphanCollector
    from rabbitsync.topology.diff import diff

    kept = env.topology(["restaurant.created"])
    gone = desired_topology(
        cluster=f"east{env.uid}",
        namespace="shop",
        subscription="gone",
        spec=SyncSubscriptionSpec.model_validate({"service": "orders", "events": ["restaurant.created"]}),
        exchange=env.exchange,
    )
    observe_and_sync(env.rabbit, kept)
    observe_and_sync(env.rabbit, gone)
    env.delete_queue_out_of_band(kept.dead_letter_queue.name)
    listing = env.rabbit.snapshot()
    shared = {"shared": [q.name for q in kept.shared_queues], "exchanges": [e.name for e in kept.exchanges]}
    plan = diff(kept, listing.observed_for(kept.exchange, kept.main_queue.name, **shared))
    assert [q.name for q in plan.declare_queues] == [kept.dead_letter_queue.name], "the drift is in the listing"
    collector = OrphanCollector(f"east{env.uid}", (), grace_seconds=0)
    found = collector.sweep(listing, env.rabbit, "test", [("shop", "orders")], now=0)
    assert set(found.orphans) == set(found.removed) == {gone.main_queue.name, gone.dead_letter_queue.name}
    after = env.rabbit.snapshot()
    assert not any(q.name.startswith(gone.main_queue.name) for q in after.queues)
    assert {kept.main_queue.name, *(q.name for q in kept.shared_queues)} <= {q.name for q in after.queues}


def test_observing_by_name_sees_what_the_listing_sees_of_those_queues(env: Env) -> None:
    """Issue 11: by name costs the same at any broker size; only the listing finds dropped delay queues."""
    new = env.topology(["a", "b"], retry={"maxAttempts": 2, "initialBackoffMs": 500, "maxBackoffMs": 500})
    assert observe_and_sync(env.rabbit, new).verified
    main = new.main_queue.name
    legacy = naming.retry_queue_name(main, 2000)  # one an older release left
    env.channel().queue_declare(legacy, durable=True, arguments={"x-queue-type": "quorum"})
    shared = [q.name for q in new.shared_queues]
    listed = env.rabbit.observe(new.exchange, main, shared=shared)
    names = [q.name for q in new.queues]
    by_name = env.rabbit.observe(new.exchange, main, names)
    assert set(listed.queues) - set(by_name.queues) == {legacy}, "the dropped one"
    assert {n: by_name.queues[n] for n in names} == {n: listed.queues[n] for n in names}
    assert by_name.bindings == listed.bindings == new.bindings
    assert by_name.exchange == listed.exchange
    env.delete_queue_out_of_band(new.dead_letter_queue.name)
    assert new.dead_letter_queue.name not in env.rabbit.observe(new.exchange, main, names).queues


@pytest.mark.parametrize("queue_type", ["quorum", "classic"])
def test_a_consumer_just_attached_is_counted_before_the_statistics_show_it(env: Env, queue_type: str) -> None:
    """The management API's consumer count comes from statistics emitted every few seconds; the sync
    asks the queue itself when they show none (at 1,000 subscriptions they were minutes behind)."""
    topo = env.topology(["restaurant.created"], queueType=queue_type)
    assert observe_and_sync(env.rabbit, topo).consumers == 0
    channel = env.channel()
    channel.basic_consume(topo.main_queue.name, lambda *_: None)
    assert env.rabbit.consumers(topo.main_queue.name) == 1
    assert observe_and_sync(env.rabbit, topo, previously_synced=True).consumers == 1
    channel.close()
    assert env.rabbit.consumers(topo.main_queue.name) == 0
    assert env.rabbit.consumers(f"{topo.main_queue.name}.absent") is None
