"""What the world does to a subscription: out-of-band deletions, a stopped broker, missing references,
a broker that is gone when the subscription is deleted. The operator repairs, reports, and never blocks.
"""

from __future__ import annotations

import time

import pytest
from opkit import DELETE_ATTEMPTS, MAX_BACKOFF_SECONDS, RESYNC_SECONDS, Kit, closed_port, wait_for

from rabbitsync.topology import naming

pytestmark = pytest.mark.integration


def test_out_of_band_deletions_are_repaired_and_reported(kit: Kit) -> None:
    kit.setup_broker("east")
    kit.create_subscription("east", "orders", ["a.created", "b.created"])
    kit.wait_synced("east", "orders")
    main = kit.queue_name("east", "orders")
    before = set(kit.queues("east", "orders"))

    kit.mgmt.delete_queue(f"{main}.dlq")
    kit.mgmt.delete_binding(kit.exchange, main, kit.key("b.created"))
    kit.mgmt.bind(kit.exchange, main, kit.key("not.subscribed"))
    assert f"{main}.dlq" not in kit.queues("east", "orders")
    assert kit.bindings("east", "orders") == kit.keys("a.created", "not.subscribed")

    wait_for(
        lambda: (
            set(kit.queues("east", "orders")) == before
            and kit.bindings("east", "orders") == kit.keys("a.created", "b.created")
        ),
        3 * RESYNC_SECONDS + 10,
        "queue and binding restored, extra binding removed",
    )
    _, _, message = kit.wait_event("east", "orders", "DriftRepaired", timeout=RESYNC_SECONDS + 5)
    assert f"{main}.dlq" in message and "b.created" in message and "not.subscribed" in message, message
    kit.wait_synced("east", "orders", timeout=5)


def test_a_shared_delay_queue_deleted_out_of_band_is_restored(kit: Kit) -> None:
    """Reconciles take the cluster's shared objects from memory between sweeps (``amqp.shared``): the
    sweep that finds one gone makes the reconciles it asks for look at them again."""
    kit.setup_broker("east")
    kit.create_subscription("east", "orders", ["a.created"])
    kit.wait_synced("east", "orders")
    delay = naming.delay_name("east", "quorum", 1000)
    assert delay in kit.mgmt.queues(delay)

    kit.mgmt.delete_queue(delay)
    wait_for(
        lambda: delay in kit.mgmt.queues(delay) and kit.mgmt.bindings(delay, delay) == {"#"},
        3 * RESYNC_SECONDS + 10,
        "the shared delay queue and its binding restored",
    )
    _, _, message = kit.wait_event("east", "orders", "DriftRepaired", timeout=RESYNC_SECONDS + 5)
    assert delay in message, message


def test_stopped_broker_is_reported_and_recovered_without_loss(kit: Kit, broker) -> None:  # type: ignore[no-untyped-def]
    kit.setup_broker("east")
    kit.create_subscription("east", "orders", ["a.created"])
    kit.wait_synced("east", "orders")
    before = set(kit.queues("east", "orders"))

    broker.stop()
    try:
        stopped = time.monotonic()
        obj = kit.wait_condition("east", "orders", "BrokerReachable", "False", timeout=RESYNC_SECONDS + 8)
        assert time.monotonic() - stopped <= RESYNC_SECONDS + 8
        assert kit.condition(obj, "Ready")["status"] == "False"
        reachable = kit.condition(obj, "BrokerReachable")
        assert reachable["reason"] == "BrokerUnreachable" and reachable["message"], reachable
        kit.wait_event("east", "orders", "BrokerUnreachable", timeout=5)
    finally:
        broker.start()
    obj = kit.wait_synced("east", "orders", timeout=3 * RESYNC_SECONDS + MAX_BACKOFF_SECONDS + 10)
    assert kit.condition(obj, "BrokerReachable")["status"] == "True"
    assert set(kit.queues("east", "orders")) == before
    assert kit.bindings("east", "orders") == kit.keys("a.created")
    # An Event per condition flip, not one per failed attempt (a retry every few seconds: dozens over
    # the outage): no storm while the broker was down. Three conditions carry the reason, and a node
    # that boots may answer AMQP before its management API does (500s), so each may flip once or twice
    # more before the node settles.
    unreachable = [e for e in kit.events("east", "orders") if e[1] == "BrokerUnreachable"]
    assert 1 <= len(unreachable) <= 9, unreachable


def test_missing_syncbroker_then_secret_are_named_then_ready_without_restart(kit: Kit) -> None:
    kit.create_subscription("east", "orders", ["a.created"])
    obj = kit.wait_condition("east", "orders", "Ready", "False", reason="SyncBrokerNotFound")
    assert f"SyncBroker {kit.namespace}/default" in kit.condition(obj, "Ready")["message"]

    kit.create_syncbroker("east", secret="rabbitmq")
    obj = kit.wait_condition("east", "orders", "Ready", "False", reason="SecretNotFound")
    assert f"Secret {kit.namespace}/rabbitmq" in kit.condition(obj, "Ready")["message"]

    kit.create_secret("east", name="rabbitmq")
    kit.wait_synced("east", "orders")
    assert kit.bindings("east", "orders") == kit.keys("a.created")


def test_delete_with_unreachable_broker_gives_up_and_says_what_is_left(kit: Kit) -> None:
    port = closed_port()
    kit.setup_broker(
        "east", uri=f"amqp://guest:guest@127.0.0.1:{port}/", managementUri=f"http://guest:guest@127.0.0.1:{port}"
    )
    kit.create_subscription("east", "orders", ["a.created"])
    kit.wait_condition("east", "orders", "BrokerReachable", "False")

    kit.delete_subscription("east", "orders")
    # Attempts are spaced by the capped backoff; the last one releases the finalizer.
    give_up = sum(min(MAX_BACKOFF_SECONDS, 2.0 * 2**i) for i in range(DELETE_ATTEMPTS - 1))
    kit.wait_gone("east", "orders", timeout=give_up + 20)
    _, _, message = kit.wait_event("east", "orders", "TopologyLeftBehind", timeout=5)
    assert kit.queue_name("east", "orders") in message, message


def test_delete_with_syncbroker_gone_releases_at_once(kit: Kit) -> None:
    kit.setup_broker("east")
    kit.create_subscription("east", "orders", ["a.created"])
    kit.wait_synced("east", "orders")
    kit.custom("east").delete_namespaced_custom_object(
        "rabbitsync.io", "v1alpha1", kit.namespace, "syncbrokers", "default"
    )

    kit.delete_subscription("east", "orders")
    kit.wait_gone("east", "orders", timeout=10)
    _, _, message = kit.wait_event("east", "orders", "TopologyLeftBehind", timeout=5)
    assert "SyncBroker" in message and kit.queue_name("east", "orders") in message, message
    # Left behind means left: the queues are still there for someone to decide about.
    assert kit.queue_name("east", "orders") in kit.queues("east", "orders")


def test_queue_arguments_conflict_is_a_condition_and_an_event_not_a_loop(kit: Kit) -> None:
    # Someone declared the queue by hand as a classic queue; RabbitMQ cannot turn it into a quorum one.
    main = kit.queue_name("east", "orders")
    kit.mgmt.declare_queue(main, {"x-queue-type": "classic"})
    kit.setup_broker("east")
    kit.create_subscription("east", "orders", ["a.created"])

    obj = kit.wait_condition("east", "orders", "TopologySynced", "False")
    synced = kit.condition(obj, "TopologySynced")
    assert synced["reason"] in ("QueueArgumentsConflict", "PreconditionFailed"), synced
    assert main in synced["message"], synced
    assert kit.condition(obj, "Ready")["status"] == "False"
    assert kit.condition(obj, "BrokerReachable")["status"] == "True"
    kit.wait_event("east", "orders", synced["reason"], timeout=5)
    # Permanent: after two more resyncs still one Event for it, and the classic queue is untouched.
    time.sleep(2 * RESYNC_SECONDS)
    same = [e for e in kit.events("east", "orders") if e[1] == synced["reason"]]
    assert len(same) <= 2, same
    assert kit.mgmt.queues(main)[main]["type"] == "classic"


def test_access_refused_is_permanent_and_named(kit: Kit) -> None:
    user = f"u-{kit.uid}"
    kit.mgmt.call("PUT", f"/api/users/{user}", {"password": "secret", "tags": "management"})
    try:
        # A user that may log in but has no permission on the vhost.
        kit.setup_broker("east", uri=f"amqp://{user}:secret@127.0.0.1:5672/")
        kit.create_subscription("east", "orders", ["a.created"])
        obj = kit.wait_condition("east", "orders", "Ready", "False", reason="AccessRefused")
        assert kit.queues("east", "orders") == {}
        assert kit.condition(obj, "Ready")["message"], obj
        kit.wait_event("east", "orders", "AccessRefused", timeout=5)
    finally:
        kit.mgmt.call("DELETE", f"/api/users/{user}")
