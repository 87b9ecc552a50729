"""Two clusters' operators on one broker never touch each other's queues; the operator's own settings."""

from __future__ import annotations

import os
import subprocess

import pytest
from opkit import CONVERGE, RESYNC_SECONDS, Kit, wait_for

from harness import operators

pytestmark = pytest.mark.integration


def test_same_subscription_in_east_and_west_gets_two_queues_deleting_one_keeps_the_other(kit: Kit) -> None:
    for cluster in ("east", "west"):
        kit.setup_broker(cluster)
        kit.create_subscription(cluster, "orders", ["a.created"])
    east = kit.wait_synced("east", "orders")
    west = kit.wait_synced("west", "orders")
    assert east["status"]["queue"] == kit.queue_name("east", "orders")
    assert west["status"]["queue"] == kit.queue_name("west", "orders")
    assert kit.bindings("east", "orders") == kit.bindings("west", "orders") == kit.keys("a.created")
    west_queues = set(kit.queues("west", "orders"))
    assert len(west_queues) == len(kit.queues("east", "orders")) == 2

    kit.delete_subscription("east", "orders")
    kit.wait_gone("east", "orders")
    assert kit.queues("east", "orders") == {}
    assert set(kit.queues("west", "orders")) == west_queues
    assert kit.bindings("west", "orders") == kit.keys("a.created")
    # West's next resync finds nothing to repair: east's cleanup did not touch it.
    before = {e for e in kit.events("west", "orders") if e[1] == "DriftRepaired"}
    kit.wait_condition("west", "orders", "TopologySynced", "True", timeout=RESYNC_SECONDS + 5)
    assert {e for e in kit.events("west", "orders") if e[1] == "DriftRepaired"} == before


@pytest.mark.parametrize(
    ("cluster", "expected"),
    [(None, "RABBITSYNC_CLUSTER is not set"), ("East_1", "RABBITSYNC_CLUSTER='East_1' is invalid")],
)
def test_operator_refuses_to_start_without_a_valid_cluster_name(cluster: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITSYNC_")}
    if cluster is not None:
        env["RABBITSYNC_CLUSTER"] = cluster
    env["KUBECONFIG"] = "/nonexistent"  # it must stop before touching any cluster
    proc = subprocess.run(
        [str(operators.executable())], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2, proc
    assert expected in proc.stderr, proc.stderr


def test_restarted_operator_resumes_and_applies_what_changed_while_it_was_down(kit: Kit, operators_running) -> None:  # type: ignore[no-untyped-def]
    kit.setup_broker("east")
    kit.create_subscription("east", "orders", ["a.created", "b.created"])
    kit.wait_synced("east", "orders")

    operators_running.stop("east")
    try:
        kit.patch_subscription("east", "orders", {"events": ["b.created", "c.created"]})
        kit.mgmt.delete_queue(kit.queue_name("east", "orders") + ".dlq")
    finally:
        operators_running.start("east")
    obj = wait_for(
        lambda: (o := kit.get("east", "orders")) and o["status"].get("observedGeneration") == 2 and o,
        CONVERGE,
        "generation 2 reconciled after the restart",
    )
    kit.wait_synced("east", "orders")
    assert obj["metadata"]["generation"] == 2
    assert kit.bindings("east", "orders") == kit.keys("b.created", "c.created")
    assert len(kit.queues("east", "orders")) == 2
