"""A subscription's life as a platform engineer sees it: apply, edit, delete (or retain).

Each test checks both sides: the object's status and printer columns in the cluster, and the queues
and bindings on the broker through its management API.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from opkit import CONVERGE, RESYNC_SECONDS, Kit, health_status, wait_for

from harness import operators
from rabbitsync.topology import naming

pytestmark = pytest.mark.integration

DELAYS_MS = (1000, 2000, 4000, 8000)  # default retry: 5 attempts from 1 s, doubling


def delay_queues(cluster: str, *delays: int) -> list[str]:
    """The cluster's shared delay queues (quorum) for ``delays``, in the status's order."""
    return [naming.delay_name(cluster, "quorum", d) for d in delays]


def test_apply_creates_verified_topology_and_status(kit: Kit, operators_running, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    kit.setup_broker("east")
    manifest = tmp_path / "ssub.yaml"
    manifest.write_text(yaml.safe_dump(kit.subscription_body("orders", ["restaurant.created", "menu.updated"])))
    admin = kit.clusters["east"].kubeconfig
    operators.kubectl(admin, "apply", "-n", kit.namespace, "-f", str(manifest))

    obj = kit.wait_synced("east", "orders")
    main = kit.queue_name("east", "orders")
    status = obj["status"]
    assert status["queue"] == main
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert status["deadLetterQueue"] == f"{main}.dlq"
    assert status["retryQueues"] == delay_queues("east", *DELAYS_MS)
    assert status["exchange"] == kit.exchange
    for type_ in ("BrokerReachable", "TopologySynced"):
        assert kit.condition(obj, type_)["status"] == "True", status

    queues = kit.queues("east", "orders")
    assert set(queues) == {main, f"{main}.dlq"}, "its own queues; the delay queues are the cluster's"
    assert all(q["durable"] and q["type"] == "quorum" for q in queues.values()), queues
    assert queues[main]["arguments"]["x-dead-letter-routing-key"] == f"{main}.dlq"
    shared = kit.mgmt.queues("rabbitsync.east.@delay.")
    for delay, name in zip(DELAYS_MS, delay_queues("east", *DELAYS_MS), strict=True):
        args = shared[name]["arguments"]
        assert (args["x-message-ttl"], args["x-dead-letter-exchange"]) == (delay, naming.retries_exchange("east"))
    assert kit.bindings("east", "orders") == kit.keys("restaurant.created", "menu.updated")
    assert kit.mgmt.bindings(naming.retries_exchange("east"), main) == {main}, "its retries come back to it"

    # Quorum queues get an explicit delivery limit (issue 10 point 2), as an argument (issue 11).
    assert queues[main]["arguments"]["x-delivery-limit"] == 5 + 20, queues[main]
    assert not kit.mgmt.call("GET", f"/api/queues/%2F/{kit.mgmt.q(main)}").get("policy")

    # Nothing consumes yet (no Deployment, no pod): not Ready, and the table says why (issue 12).
    obj = kit.wait_condition("east", "orders", "Ready", "False", reason="DeploymentNotFound")
    table = operators.kubectl(admin, "get", "ssub", "orders", "-n", kit.namespace)
    header, row = table.splitlines()
    assert header.split()[:8] == ["NAME", "SERVICE", "EVENTS", "READY", "REASON", "CONSUMERS", "QUEUE", "DEPTH"]
    assert row.split()[:7] == ["orders", "orders", "2", "False", "DeploymentNotFound", "0", "0"], table
    wide = operators.kubectl(admin, "get", "ssub", "orders", "-n", kit.namespace, "-o", "wide")
    assert main in wide and "no Deployment" in wide, wide

    for op in operators_running.values():
        assert health_status(op) == 200

    # Counts are refreshed by the resync timer (the management API itself samples every few seconds).
    kit.mgmt.publish(kit.exchange, kit.key("menu.updated"))
    wait_for(
        lambda: (kit.get("east", "orders") or {}).get("status", {}).get("queueDepth") == 1,
        RESYNC_SECONDS + 15,
        "queueDepth 1 after one publish",
    )


def test_edit_events_rebinds_exactly_then_delete_removes_topology(kit: Kit) -> None:
    kit.setup_broker("east")
    kit.create_subscription("east", "orders", ["a.created", "b.created"])
    synced = kit.condition(kit.wait_synced("east", "orders"), "TopologySynced")
    assert kit.bindings("east", "orders") == kit.keys("a.created", "b.created")

    kit.patch_subscription("east", "orders", {"events": ["b.created", "c.created", "d.created"]})
    obj = wait_for(
        lambda: (
            (o := kit.get("east", "orders"))
            and o["status"].get("observedGeneration") == 2
            and kit.condition(o, "TopologySynced").get("status") == "True"
            and o
        ),
        CONVERGE,
        "generation 2 reconciled",
    )
    assert obj["metadata"]["generation"] == 2
    # TopologySynced stayed True: its lastTransitionTime is that of the first transition, not of the last
    # reconcile. (Ready needs a consumer, which this test does not run.)
    assert kit.condition(obj, "TopologySynced")["lastTransitionTime"] == synced["lastTransitionTime"]
    assert kit.condition(obj, "TopologySynced")["observedGeneration"] == 2
    assert kit.bindings("east", "orders") == kit.keys("b.created", "c.created", "d.created")
    assert len(kit.queues("east", "orders")) == 2

    kit.delete_subscription("east", "orders")
    kit.wait_gone("east", "orders")
    assert kit.queues("east", "orders") == {}
    kit.wait_event("east", "orders", "TopologyDeleted", timeout=5)


def test_changed_backoff_uses_other_shared_delay_queues(kit: Kit) -> None:
    kit.setup_broker("east")
    kit.create_subscription("east", "orders", ["a.created"])
    kit.wait_synced("east", "orders")
    main = kit.queue_name("east", "orders")

    # Delay queues are named by their TTL: fewer attempts and a longer first delay mean other queues.
    kit.patch_subscription("east", "orders", {"retry": {"maxAttempts": 3, "initialBackoffMs": 5000}})
    expected = set(delay_queues("east", 5000, 10000))
    wait_for(lambda: expected <= set(kit.mgmt.queues("rabbitsync.east.@delay.")), CONVERGE, "delay queues declared")
    assert set(kit.queues("east", "orders")) == {main, f"{main}.dlq"}
    # The queues change inside the reconcile, its status is written after it: wait for that status.
    obj = wait_for(
        lambda: (o := kit.wait_synced("east", "orders")) and o["status"]["observedGeneration"] == 2 and o,
        CONVERGE,
        "generation 2 synced",
    )
    assert obj["status"]["retryQueues"] == delay_queues("east", 5000, 10000)


def test_retain_keeps_queues_and_releases_the_object(kit: Kit) -> None:
    kit.setup_broker("east")
    kit.create_subscription("east", "keep", ["a.created"], deletionPolicy="retain")
    kit.wait_synced("east", "keep")
    before = set(kit.queues("east", "keep"))
    assert len(before) == 2

    kit.delete_subscription("east", "keep")
    kit.wait_gone("east", "keep")
    assert set(kit.queues("east", "keep")) == before
    assert kit.bindings("east", "keep") == kit.keys("a.created")
    kit.wait_event("east", "keep", "TopologyRetained", timeout=5)
