"""Issue 10 point 6: a delay queue the schedule dropped is deleted only once no pod can publish into it.

Before, the reconcile of a schedule change deleted the obsolete delay queue (empty check, delete)
*before* it gave the Deployment the new schedule, while the old pods still published retries into it;
and the emptiness check missed messages a quorum queue had expired but not yet dead-lettered.
"""

from __future__ import annotations

import pytest
from opscene import NS, Scene, reasons

from rabbitsync.topology import naming

pytestmark = pytest.mark.unit

QUEUE = naming.queue_name("east", NS, "orders")
OLD = {"maxAttempts": 2, "initialBackoffMs": 2000, "maxBackoffMs": 2000}
NEW = {"maxAttempts": 2, "initialBackoffMs": 500, "maxBackoffMs": 500}
OLD_DELAY, NEW_DELAY = f"{QUEUE}.retry.2000ms", f"{QUEUE}.retry.500ms"


def _changed_schedule(scene: Scene):  # type: ignore[no-untyped-def]
    """A subscription reconciled on the old schedule (its sidecar injected), then changed to the new one."""
    scene.reconcile(scene.subscribe(retry=OLD))
    assert OLD_DELAY in scene.broker.queues
    return scene.subscribe(retry=NEW, generation=2)


def test_the_old_delay_queue_outlives_the_reconcile_that_changes_the_sidecar() -> None:
    scene = Scene.ready()
    sub = _changed_schedule(scene)
    first = scene.reconcile(sub)
    # The template still carried the old schedule when the queues were synced: the old pods may publish.
    assert OLD_DELAY in scene.broker.queues and NEW_DELAY in scene.broker.queues
    assert "QueueRetiring" in reasons(first.notes)
    # Now the template has the new schedule and (the fake's Deployment has no status) its rollout is done.
    scene.again(sub, first)
    assert OLD_DELAY not in scene.broker.queues


def test_an_unfinished_rollout_keeps_the_old_delay_queue() -> None:
    scene = Scene.ready()
    sub = _changed_schedule(scene)
    outcome = scene.reconcile(sub)
    deployment = scene.kube.deployments[NS, "orders"]
    deployment["metadata"]["generation"] = 3
    deployment["status"] = {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 1}
    outcome = scene.again(sub, outcome)
    assert OLD_DELAY in scene.broker.queues and "QueueRetiring" in reasons(outcome.notes)
    deployment["status"] = {"observedGeneration": 3, "replicas": 1, "updatedReplicas": 1}
    scene.again(sub, outcome)
    assert OLD_DELAY not in scene.broker.queues


def test_messages_waiting_to_be_dead_lettered_keep_the_queue() -> None:
    scene = Scene.ready()
    sub = _changed_schedule(scene)
    outcome = scene.reconcile(sub)
    scene.broker.queues[OLD_DELAY].dead_lettering = 1
    outcome = scene.again(sub, outcome)
    assert OLD_DELAY in scene.broker.queues and "QueueKept" in reasons(outcome.notes)
    scene.broker.queues[OLD_DELAY].dead_lettering = 0
    scene.again(sub, outcome)
    assert OLD_DELAY not in scene.broker.queues


def test_without_a_deployment_nothing_publishes_and_the_queue_goes_at_once() -> None:
    scene = Scene.ready()
    sub = _changed_schedule(scene)
    del scene.kube.deployments[NS, "orders"]
    scene.reconcile(sub)
    assert OLD_DELAY not in scene.broker.queues
