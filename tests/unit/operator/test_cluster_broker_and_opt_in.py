"""The cluster broker (admin Secret in the operator's namespace, allowed namespaces) and opt-in injection."""

from __future__ import annotations

import pytest
from opscene import APP, NS, SETTINGS, URI, Scene, condition

from rabbitsync.operator import sidecar_spec
from rabbitsync.operator.brokers import reconcile_broker
from rabbitsync.operator.outcome import ObjectView

pytestmark = pytest.mark.unit

OPS = SETTINGS.operator_namespace


def _cluster_scene(allowed: list[str]) -> Scene:
    scene = Scene()
    scene.kube.add_secret(OPS, "rabbitmq-admin", uri=URI)
    scene.kube.add_cluster_broker("default", {"secretRef": {"name": "rabbitmq-admin"}, "allowedNamespaces": allowed})
    scene.kube.add_deployment(NS, "orders", [APP])
    scene.broker.consumers_on_declare = 1
    return scene


def test_a_namespace_without_syncbroker_uses_the_cluster_broker_it_is_allowed() -> None:
    scene = _cluster_scene([NS])
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "Ready") == ("True", "TopologyVerified")
    assert condition(outcome, "CredentialsReady") == ("True", "CredentialsReady")
    # The admin Secret was read in the operator's namespace; the tenant holds only its service's.
    assert scene.resolved[-1].endpoint.amqp_uri == URI
    assert {name for ns, name in scene.kube.secrets if ns == NS} == {"rabbitsync-orders"}
    assert "guest:guest" not in str(scene.kube.secret_text(NS, "rabbitsync-orders"))


def test_a_namespace_not_allowed_is_refused_with_a_clear_condition() -> None:
    scene = _cluster_scene(["other"])
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "Ready") == ("False", "NamespaceNotAllowed")
    assert "allowedNamespaces" in str(outcome.status) and outcome.temporary_failure is None
    assert scene.resolved == [] and scene.kube.sidecar(NS, "orders") is None
    pub = scene.reconcile_publication(scene.publish())
    assert condition(pub, "Ready") == ("False", "NamespaceNotAllowed")


def test_a_syncbroker_in_the_namespace_wins_over_the_cluster_broker() -> None:
    scene = _cluster_scene([NS])
    scene.kube.add_secret(NS, "own", uri="amqp://u:p@own.example:5672/")
    scene.kube.add_sync_broker(NS, "default", {"secretRef": {"name": "own"}})
    scene.reconcile(scene.subscribe())
    assert scene.resolved[-1].endpoint.host == "own.example"


def test_neither_broker_names_the_namespaced_kind() -> None:
    scene = Scene()
    scene.kube.add_deployment(NS, "orders", [APP])
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "Ready") == ("False", "SyncBrokerNotFound")


def test_the_cluster_broker_reconciles_from_the_operators_namespace() -> None:
    scene = _cluster_scene([NS])
    outcome = reconcile_broker(ObjectView("", "default", 1, {}), scene.kube, scene.brokers, operator_namespace=OPS)
    assert condition(outcome, "Ready") == ("True", "ExchangeReady")


def test_a_deployment_that_has_not_opted_in_gets_no_sidecar() -> None:
    scene = Scene.ready()
    scene.kube.add_deployment(NS, "orders", [APP], annotations={})
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "SidecarInjected") == ("False", "InjectionNotAllowed")
    assert sidecar_spec.INJECT_ANNOTATION in str(outcome.status)
    assert scene.kube.applied == [] and scene.kube.sidecar(NS, "orders") is None
    # The topology and the credentials do not depend on it, but nothing will consume: not Ready.
    assert condition(outcome, "TopologySynced") == ("True", "Synced")
    assert condition(outcome, "Ready") == ("False", "SidecarNotInjected")


def test_opting_out_after_an_injection_removes_the_sidecar() -> None:
    scene = Scene.ready()
    sub = scene.subscribe()
    scene.reconcile(sub)
    assert scene.kube.sidecar(NS, "orders") is not None
    del scene.kube.deployments[NS, "orders"]["metadata"]["annotations"][sidecar_spec.INJECT_ANNOTATION]
    outcome = scene.reconcile(sub)
    assert condition(outcome, "SidecarInjected") == ("False", "InjectionNotAllowed")
    assert scene.kube.sidecar(NS, "orders") is None


def test_the_sidecar_is_hardened_whatever_the_app_says() -> None:
    scene = Scene.ready()
    app = {**APP, "securityContext": {"runAsUser": 10001, "readOnlyRootFilesystem": False, "privileged": False}}
    scene.kube.add_deployment(NS, "orders", [app])
    scene.reconcile(scene.subscribe())
    sidecar = scene.kube.sidecar(NS, "orders")
    assert sidecar is not None
    ctx = sidecar["securityContext"]
    assert ctx["runAsUser"] == 10001 and ctx["runAsNonRoot"] and ctx["readOnlyRootFilesystem"]
    assert ctx["capabilities"] == {"drop": ["ALL"]} and ctx["allowPrivilegeEscalation"] is False
