"""Reconciling a SyncSubscription through the fake port and the fake broker, one failure at a time."""

from __future__ import annotations

import dataclasses

import pytest
from opscene import NOW, NS, SETTINGS, URI, Scene, condition, message, reasons, types
from pydantic import TypeAdapter

from rabbitsync.amqp.fake import FakeQueue
from rabbitsync.operator import sidecar_spec
from rabbitsync.operator.kube import Invalid
from rabbitsync.operator.outcome import ReconcileOutcome
from rabbitsync.operator.reconcile import recheck_consumer
from rabbitsync.operator.subscription import Subscription
from rabbitsync.topology import naming
from rabbitsync.topology.sidecar_contract import ConsumerSpec
from rabbitsync.transport.errors import AccessRefused, BrokerUnreachable, InvalidEndpoint, PreconditionFailed

pytestmark = pytest.mark.unit

QUEUE = naming.queue_name("east", NS, "orders")


def _consumers(text: str) -> list[ConsumerSpec]:
    return TypeAdapter(list[ConsumerSpec]).validate_json(text)


def test_a_ready_subscription_has_its_topology_verified_and_its_sidecar() -> None:
    scene = Scene.ready()
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "Ready") == ("True", "TopologyVerified")
    assert condition(outcome, "BrokerReachable") == ("True", "Connected")
    assert condition(outcome, "TopologySynced") == ("True", "Synced")
    assert condition(outcome, "SidecarInjected") == ("True", "Injected")
    assert outcome.temporary_failure is None
    assert outcome.status["queue"] == QUEUE and outcome.status["observedGeneration"] == 1
    assert QUEUE in scene.broker.queues
    # Its retries wait in the cluster's delay queues, not in queues of its own.
    assert outcome.status["retryQueues"] == [naming.delay_name("east", "quorum", d) for d in (1000, 2000, 4000, 8000)]
    assert set(outcome.status["retryQueues"]) <= set(scene.broker.queues)
    assert not any(q.startswith(f"{QUEUE}.retry.") for q in scene.broker.queues)
    sidecar = scene.kube.sidecar(NS, "orders")
    assert sidecar is not None and sidecar["image"] == "shop/orders:1"
    env = {e["name"]: e for e in sidecar["env"]}
    assert [c.queue for c in _consumers(env["RABBITSYNC_SUBSCRIPTIONS"]["value"])] == [QUEUE]
    # The service's own credentials, never the broker's admin Secret.
    assert env["RABBITSYNC_AMQP_URL"]["valueFrom"]["secretKeyRef"]["name"] == "rabbitsync-orders"
    # The conditions appear together, all good: one Event says so, Ready's.
    assert reasons(outcome.notes) == ["TopologyVerified"]


def test_a_second_reconcile_changes_nothing_and_says_nothing() -> None:
    scene = Scene.ready()
    sub = scene.subscribe()
    first = scene.reconcile(sub)
    scene.broker.applied.clear()
    second = scene.again(sub, first)
    assert second.notes == [] and second.status["conditions"] == first.status["conditions"]
    assert scene.broker.applied == []
    assert len(scene.kube.applied) == 1, "the sidecar in place is not applied again"


def test_missing_syncbroker_is_named_and_retried_and_touches_nothing() -> None:
    scene = Scene.ready()
    del scene.kube.sync_brokers[NS, "default"]
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "Ready") == ("False", "SyncBrokerNotFound")
    assert condition(outcome, "BrokerReachable") == ("Unknown", "SyncBrokerNotFound")
    assert condition(outcome, "TopologySynced") == ("Unknown", "SyncBrokerNotFound")
    assert f"SyncBroker {NS}/default" in message(outcome, "Ready")
    assert outcome.temporary_failure
    # Without a broker the sidecar cannot be configured: nothing is applied, nothing is said about it.
    assert "SidecarInjected" not in types(outcome) and scene.kube.applied == []
    assert scene.resolved == [] and scene.broker.applied == []


def test_syncbroker_being_deleted_is_not_used() -> None:
    scene = Scene.ready()
    scene.kube.sync_brokers[NS, "default"].deleting = True
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "Ready") == ("False", "SyncBrokerNotFound")
    assert "being deleted" in message(outcome, "Ready") and outcome.temporary_failure
    assert scene.resolved == []


def test_missing_secret_is_named_and_retried() -> None:
    scene = Scene.ready()
    del scene.kube.secrets[NS, "rabbitmq"]
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "Ready") == ("False", "SecretNotFound")
    assert f"Secret {NS}/rabbitmq" in message(outcome, "Ready") and outcome.temporary_failure


def test_secret_without_the_uri_key_is_a_missing_reference() -> None:
    scene = Scene.ready()
    scene.kube.add_secret(NS, "rabbitmq", other="x")
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "Ready") == ("False", "SecretNotFound")
    assert "no key 'uri'" in message(outcome, "Ready") and outcome.temporary_failure


def test_ca_secret_is_read_and_its_key_required() -> None:
    scene = Scene.ready()
    tls = {"caSecretRef": {"name": "broker-ca", "key": "ca.pem"}}
    scene.kube.add_sync_broker(NS, "default", {"secretRef": {"name": "rabbitmq"}, "tls": tls})
    scene.kube.add_secret(NS, "broker-ca", other="x")
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "Ready") == ("False", "SecretNotFound")
    assert f"Secret {NS}/broker-ca" in message(outcome, "Ready") and "'ca.pem'" in message(outcome, "Ready")

    scene.kube.add_secret(NS, "broker-ca", **{"ca.pem": "-----BEGIN CERTIFICATE-----"})
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "Ready") == ("True", "TopologyVerified")
    assert scene.resolved[-1].endpoint.ca_pem == "-----BEGIN CERTIFICATE-----"


def test_forbidden_secret_is_a_condition_naming_rbac_and_retried() -> None:
    scene = Scene.ready()
    scene.kube.forbidden.add(("get", "Secret"))
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "Ready") == ("False", "SecretForbidden")
    assert condition(outcome, "BrokerReachable") == ("Unknown", "SecretForbidden")
    assert "RBAC" in message(outcome, "Ready") and outcome.temporary_failure


def test_secret_that_is_not_base64_is_invalid_and_not_retried() -> None:
    scene = Scene.ready()
    scene.kube.secrets[NS, "rabbitmq"] = {"uri": "not base64!"}
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "Ready") == ("False", "SecretInvalid")
    assert "'uri'" in message(outcome, "Ready")
    assert outcome.temporary_failure is None


def test_api_server_down_while_reading_the_secret_is_retried() -> None:
    scene = Scene.ready()
    scene.kube.unavailable = True
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "Ready") == ("False", "SecretUnavailable")
    assert outcome.temporary_failure


def test_broker_down_is_retried_and_the_sidecar_is_still_injected() -> None:
    scene = Scene.ready()
    scene.broker.reachable = False
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "BrokerReachable") == ("False", "BrokerUnreachable")
    assert condition(outcome, "TopologySynced") == ("Unknown", "BrokerUnreachable")
    assert condition(outcome, "Ready") == ("False", "BrokerUnreachable")
    assert "broker.example" in message(outcome, "Ready")
    assert outcome.temporary_failure
    assert condition(outcome, "SidecarInjected") == ("True", "Injected")
    assert "queue" not in outcome.status
    # What is wrong is announced as it appears; what appears fine is not, Ready says it for all.
    assert "BrokerUnreachable" in reasons(outcome.notes) and "Injected" not in reasons(outcome.notes)


def test_broker_back_is_ready_again() -> None:
    scene = Scene.ready()
    scene.broker.reachable = False
    sub = scene.subscribe()
    down = scene.reconcile(sub)
    scene.broker.reachable = True
    up = scene.again(sub, down)
    assert condition(up, "Ready") == ("True", "TopologyVerified")
    assert "Connected" in reasons(up.notes) and up.temporary_failure is None


def test_bad_ca_is_permanent() -> None:
    scene = Scene.ready()
    scene.factory_error = InvalidEndpoint("the CA bundle cannot be loaded")
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "BrokerReachable") == ("False", "InvalidBrokerURI")
    assert condition(outcome, "Ready") == ("False", "InvalidBrokerURI")
    assert outcome.temporary_failure is None


def test_invalid_uri_is_permanent_and_configures_no_sidecar() -> None:
    scene = Scene.ready()
    scene.kube.add_secret(NS, "rabbitmq", uri="http://broker.example/")
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "BrokerReachable") == ("False", "InvalidBrokerURI")
    assert condition(outcome, "Ready") == ("False", "InvalidBrokerURI")
    assert outcome.temporary_failure is None
    assert "SidecarInjected" not in types(outcome) and scene.resolved == []


def test_access_refused_is_permanent() -> None:
    scene = Scene.ready()
    scene.broker_error = AccessRefused("ACCESS_REFUSED - Login was refused")
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "BrokerReachable") == ("False", "AccessRefused")
    assert condition(outcome, "Ready") == ("False", "AccessRefused")
    assert outcome.temporary_failure is None
    assert "AccessRefused" in reasons(outcome.notes)


def test_refused_declaration_means_reachable_but_not_synced() -> None:
    scene = Scene.ready()
    scene.broker_error = PreconditionFailed("inequivalent arg 'x-queue-type'")
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "BrokerReachable") == ("True", "Connected")
    assert condition(outcome, "TopologySynced") == ("False", "PreconditionFailed")
    assert condition(outcome, "Ready") == ("False", "PreconditionFailed")
    assert outcome.temporary_failure is None


def test_queue_arguments_conflict_is_a_condition_and_not_retried() -> None:
    scene = Scene.ready()
    scene.broker.queues[QUEUE] = FakeQueue({"x-queue-type": "classic"})
    sub = scene.subscribe()
    outcome = scene.reconcile(sub)
    assert condition(outcome, "TopologySynced") == ("False", "QueueArgumentsConflict")
    assert condition(outcome, "Ready") == ("False", "QueueArgumentsConflict")
    assert condition(outcome, "BrokerReachable") == ("True", "Connected")
    assert QUEUE in message(outcome, "Ready") and outcome.temporary_failure is None
    assert scene.broker.queues[QUEUE].arguments == {"x-queue-type": "classic"}
    # Permanent and already announced: the next resync is silent.
    assert scene.again(sub, outcome).notes == []


def test_drift_is_repaired_and_announced() -> None:
    scene = Scene.ready()
    sub = scene.subscribe()
    first = scene.reconcile(sub)
    del scene.broker.queues[naming.dead_letter_queue_name(QUEUE)]
    repaired = scene.again(sub, first)
    assert condition(repaired, "TopologySynced") == ("True", "DriftRepaired")
    assert condition(repaired, "Ready") == ("True", "TopologyVerified")
    drift = [n for n in repaired.notes if n.reason == "DriftRepaired"]
    assert len(drift) == 1 and drift[0].type == "Warning" and naming.dead_letter_queue_name(QUEUE) in drift[0].message
    assert naming.dead_letter_queue_name(QUEUE) in scene.broker.queues


def test_repairs_of_a_new_generation_are_not_drift() -> None:
    scene = Scene.ready()
    sub = scene.subscribe()
    first = scene.reconcile(sub)
    changed = scene.subscribe(events=["order.created", "order.paid"], generation=2, status=first.status)
    outcome = scene.reconcile(changed)
    assert condition(outcome, "TopologySynced") == ("True", "Synced")
    assert "DriftRepaired" not in reasons(outcome.notes)


def test_missing_deployment_is_a_sidecar_condition_only() -> None:
    scene = Scene.ready()
    del scene.kube.deployments[NS, "orders"]
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "SidecarInjected") == ("False", "DeploymentNotFound")
    # Nothing will consume (issue 12): not Ready, although the topology is verified.
    assert condition(outcome, "TopologySynced") == ("True", "Synced")
    assert condition(outcome, "Ready") == ("False", "DeploymentNotFound")
    # A Deployment created later is picked up by the resync, not by hot retries.
    assert outcome.temporary_failure is None


def test_forbidden_deployment_read_is_named() -> None:
    scene = Scene.ready()
    scene.kube.forbidden.add(("get", "Deployment"))
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "SidecarInjected") == ("False", "DeploymentForbidden")
    assert "RBAC" in message(outcome, "SidecarInjected") and scene.kube.applied == []


def test_forbidden_deployment_patch_is_an_apply_failure() -> None:
    scene = Scene.ready()
    scene.kube.forbidden.add(("patch", "Deployment"))
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "SidecarInjected") == ("False", "ApplyFailed")
    assert "may not be patched" in message(outcome, "SidecarInjected")
    assert outcome.temporary_failure is None


def test_apply_conflict_is_retried_then_succeeds() -> None:
    scene = Scene.ready()
    scene.kube.conflicts = 1
    sub = scene.subscribe()
    outcome = scene.reconcile(sub)
    assert condition(outcome, "SidecarInjected") == ("False", "ApplyFailed")
    assert "conflict" in message(outcome, "SidecarInjected")
    assert outcome.temporary_failure and condition(outcome, "Ready") == ("False", "SidecarNotInjected")
    again = scene.again(sub, outcome)
    assert condition(again, "SidecarInjected") == ("True", "Injected")
    assert condition(again, "Ready") == ("True", "TopologyVerified")


def test_sibling_with_an_invalid_spec_blocks_the_sidecar_change_and_is_named() -> None:
    scene = Scene.ready()
    scene.kube.add_subscription(NS, "broken", {"service": "orders", "events": []})
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "SidecarInjected") == ("False", "SyncSubscriptionInvalid")
    assert f"SyncSubscription {NS}/broken" in message(outcome, "SidecarInjected")
    assert scene.kube.applied == []
    assert condition(outcome, "Ready") == ("False", "SidecarNotInjected")


def test_siblings_share_one_sidecar_and_one_being_deleted_does_not_count() -> None:
    scene = Scene.ready()
    scene.subscribe("payments")
    scene.kube.add_subscription(NS, "gone", {"service": "orders", "events": ["x"]}, deleting=True)
    scene.reconcile(scene.subscribe())
    sidecar = scene.kube.sidecar(NS, "orders")
    assert sidecar is not None
    env = {e["name"]: e for e in sidecar["env"]}
    subscriptions = [c.subscription for c in _consumers(env["RABBITSYNC_SUBSCRIPTIONS"]["value"])]
    assert subscriptions == ["orders", "payments"]


def test_siblings_naming_another_broker_are_a_mismatch() -> None:
    scene = Scene.ready()
    scene.subscribe("payments", broker="other")
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "SidecarInjected") == ("False", "BrokerMismatch")
    assert scene.kube.applied == []


def test_deployment_without_the_annotated_container_is_named() -> None:
    scene = Scene.ready()
    scene.kube.deployments[NS, "orders"]["metadata"]["annotations"][sidecar_spec.APP_CONTAINER_ANNOTATION] = "web"
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "SidecarInjected") == ("False", "NoAppContainer")


def test_an_invalid_own_spec_is_a_condition_not_a_crash() -> None:
    scene = Scene.ready()
    outcome = scene.reconcile(scene.subscribe(events=[]))
    assert condition(outcome, "Ready") == ("False", "SyncSubscriptionInvalid")
    assert "events" in message(outcome, "Ready") and outcome.temporary_failure is None
    assert scene.resolved == []


def test_no_third_party_error_leaves_the_spec() -> None:
    scene = Scene.ready()
    with pytest.raises(Invalid):
        scene.subscribe(events="not a list").spec()


def test_unreachable_broker_is_one_event_not_a_storm() -> None:
    scene = Scene.ready()
    scene.broker.reachable = False
    sub = scene.subscribe()
    outcome = scene.reconcile(sub)
    for _ in range(3):
        outcome = scene.again(sub, outcome)
        assert "BrokerUnreachable" not in reasons(outcome.notes)


def test_uri_is_read_from_the_secret() -> None:
    scene = Scene.ready()
    scene.reconcile(scene.subscribe())
    assert scene.resolved[-1].endpoint.amqp_uri == URI and scene.resolved[-1].secret_name == "rabbitmq"


def test_temporary_broker_error_classes_are_retried() -> None:
    scene = Scene.ready()
    scene.broker_error = BrokerUnreachable("connection reset")
    assert scene.reconcile(scene.subscribe()).temporary_failure


def test_ready_means_a_consumer_is_attached_not_just_a_verified_topology() -> None:
    """Issue 12: a subscription nobody consumes is not Ready, and the reconcile looks again soon."""
    scene = Scene.ready()
    scene.broker.consumers_on_declare = 0
    sub = scene.subscribe()
    outcome = scene.reconcile(sub)
    assert condition(outcome, "TopologySynced") == ("True", "Synced")
    assert condition(outcome, "SidecarInjected") == ("True", "Injected")
    assert condition(outcome, "Ready") == ("False", "NoConsumer")
    assert QUEUE in message(outcome, "Ready") and outcome.temporary_failure
    assert outcome.status["eventCount"] == 1
    scene.broker.queues[QUEUE].consumers = 1
    assert condition(scene.again(sub, outcome), "Ready") == ("True", "TopologyVerified")


def _waiting(scene: Scene) -> tuple[Subscription, ReconcileOutcome]:
    """A subscription whose first reconcile found everything in place but no consumer."""
    scene.broker.consumers_on_declare = 0
    sub = scene.subscribe()
    outcome = scene.reconcile(sub)
    assert condition(outcome, "Ready") == ("False", "NoConsumer")
    return dataclasses.replace(sub, status=outcome.status), outcome


def test_a_retry_waiting_only_for_a_consumer_looks_at_the_queue_and_nothing_else() -> None:
    """At 1,000 new subscriptions, a full reconcile per retry doubled the broker and API server calls."""
    scene = Scene.ready()
    sub, _ = _waiting(scene)
    assert sub.waiting_only_for_consumer()
    observations, plans = scene.broker.observations, len(scene.broker.applied)

    still = recheck_consumer(sub, scene.kube, scene.brokers, SETTINGS, now=NOW)
    assert still is not None and still.temporary_failure and still.notes == []
    assert condition(still, "Ready") == ("False", "NoConsumer")

    scene.broker.queues[QUEUE].consumers = 2
    settled = recheck_consumer(
        dataclasses.replace(sub, status=still.status), scene.kube, scene.brokers, SETTINGS, now=NOW
    )
    assert settled is not None and settled.temporary_failure is None
    assert condition(settled, "Ready") == ("True", "TopologyVerified") and QUEUE in message(settled, "Ready")
    assert settled.status["consumers"] == 2
    assert reasons(settled.notes) == ["TopologyVerified"]
    # The other conditions stay as the full reconcile left them.
    assert condition(settled, "TopologySynced") == ("True", "Synced")
    assert condition(settled, "SidecarInjected") == ("True", "Injected")
    assert (scene.broker.observations, len(scene.broker.applied)) == (observations, plans)


def test_a_retry_needs_the_full_reconcile_when_the_queue_is_gone_or_the_broker_fails() -> None:
    scene = Scene.ready()
    sub, _ = _waiting(scene)
    scene.broker_error = BrokerUnreachable("connection reset")
    assert recheck_consumer(sub, scene.kube, scene.brokers, SETTINGS, now=NOW) is None
    scene.broker_error = None
    del scene.broker.queues[QUEUE]
    assert recheck_consumer(sub, scene.kube, scene.brokers, SETTINGS, now=NOW) is None
    del scene.kube.sync_brokers[NS, "default"]
    assert recheck_consumer(sub, scene.kube, scene.brokers, SETTINGS, now=NOW) is None


def test_only_a_verified_injected_generation_waits_only_for_a_consumer() -> None:
    scene = Scene.ready()
    sub, outcome = _waiting(scene)
    assert not dataclasses.replace(sub, generation=2).waiting_only_for_consumer(), "a newer spec: not verified"
    retiring = {**outcome.status, "retiringQueues": [f"{QUEUE}.retry.1000ms"]}
    assert not dataclasses.replace(sub, status=retiring).waiting_only_for_consumer(), "a delay queue to retire"
    scene.broker.queues[QUEUE].consumers = 1
    ready = scene.again(sub, outcome)
    assert not dataclasses.replace(sub, status=ready.status).waiting_only_for_consumer(), "Ready already"
    assert not scene.subscribe("fresh").waiting_only_for_consumer(), "never reconciled"


def test_a_subscription_whose_credentials_failed_is_not_waiting_only_for_a_consumer() -> None:
    """Seen at 100 subscriptions: a sibling won the race for the service's Secret, the retry only
    looked at the queue, and the subscription went Ready with CredentialsReady False for ten minutes
    (its user's rights never recomputed for its queue)."""
    scene = Scene.ready()
    scene.broker.consumers_on_declare = 0
    scene.kube.secret_conflicts = 1  # a sibling's reconcile writes the service's Secret first
    sub = scene.subscribe()
    outcome = scene.reconcile(sub)
    assert condition(outcome, "CredentialsReady") == ("False", "SecretConflict")
    assert condition(outcome, "Ready") == ("False", "NoConsumer") and outcome.temporary_failure
    assert not dataclasses.replace(sub, status=outcome.status).waiting_only_for_consumer()
    # The full reconcile the retry runs instead puts the credentials in place.
    scene.broker.queues[QUEUE].consumers = 1
    settled = scene.again(sub, outcome)
    assert condition(settled, "CredentialsReady") == ("True", "CredentialsReady")
    assert condition(settled, "Ready") == ("True", "TopologyVerified")


def test_a_ready_subscription_whose_credentials_failed_is_not_healthy() -> None:
    """Its retry must not be skipped as settled, nor its resync put off to the refresh interval: at
    1,000 subscriptions 5 stayed Ready with CredentialsReady False after the change above."""
    scene = Scene.ready()
    scene.kube.secret_conflicts = 1  # a sibling's reconcile writes the service's Secret first
    sub = scene.subscribe()
    outcome = scene.reconcile(sub)
    assert condition(outcome, "Ready") == ("True", "TopologyVerified") and outcome.temporary_failure
    assert condition(outcome, "CredentialsReady") == ("False", "SecretConflict")
    assert not dataclasses.replace(sub, status=outcome.status).healthy()
    settled = scene.again(sub, outcome)
    assert dataclasses.replace(sub, status=settled.status).healthy()
