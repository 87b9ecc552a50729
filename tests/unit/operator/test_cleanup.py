"""Cleanup of a deleted SyncSubscription: the finalizer is released on every path, never held forever."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Mapping
from typing import Any

import pytest
from opscene import NS, SETTINGS, Scene, reasons

from rabbitsync.operator.cleanup import cleanup
from rabbitsync.operator.kube import Conflict, KubeError, Unavailable
from rabbitsync.operator.kube.fake import FakeCluster
from rabbitsync.operator.subscription import Subscription
from rabbitsync.topology import naming
from rabbitsync.transport.errors import AccessRefused, BrokerUnreachable, InvalidEndpoint, NotFound, PreconditionFailed

pytestmark = pytest.mark.unit

QUEUE = naming.queue_name("east", NS, "orders")
LAST = SETTINGS.delete_give_up_attempts - 1


def _ready(scene: Scene, **spec: Any) -> Subscription:
    """A subscription reconciled once: its status names its queue, as when it is deleted for real."""
    sub = scene.subscribe(**spec)
    return dataclasses.replace(sub, status=scene.reconcile(sub).status)


def test_delete_policy_deletes_the_queues_and_removes_the_sidecar() -> None:
    scene = Scene.ready()
    sub = _ready(scene)
    done = scene.delete(sub)
    assert done.done and reasons(done.notes) == ["TopologyDeleted", "CredentialsRemoved"]
    assert QUEUE in done.notes[0].message
    assert not [q for q in scene.broker.queues if q.startswith(QUEUE)]
    assert "rabbitsync.events" in scene.broker.exchanges
    assert scene.kube.sidecar(NS, "orders") is None


def test_deleting_the_last_subscription_of_the_cluster_keeps_what_the_cluster_shares() -> None:
    scene = Scene.ready()
    sub = _ready(scene)
    shared = {q for q in scene.broker.queues if naming.shared_by_cluster(q)}
    exchanges = dict(scene.broker.exchanges)
    assert shared and naming.retries_exchange("east") in exchanges
    done = scene.delete(sub)
    assert done.done and not any(q in done.notes[0].message for q in shared)
    assert set(scene.broker.queues) == shared and scene.broker.exchanges == exchanges
    assert all(b.queue in shared for b in scene.broker.bindings), "its binding to the retries exchange went with it"


def test_retain_policy_keeps_the_queues() -> None:
    scene = Scene.ready()
    sub = _ready(scene, deletionPolicy="retain")
    done = scene.delete(sub)
    assert (
        done.done
        and reasons(done.notes) == ["TopologyRetained", "CredentialsRemoved"]
        and QUEUE in done.notes[0].message
    )
    assert QUEUE in scene.broker.queues


def test_the_sidecar_shrinks_to_the_remaining_subscriptions() -> None:
    scene = Scene.ready()
    scene.reconcile(scene.subscribe("payments"))
    sub = _ready(scene)
    assert scene.delete(sub).done
    sidecar = scene.kube.sidecar(NS, "orders")
    assert sidecar is not None and "payments" in str(sidecar["env"]) and QUEUE not in str(sidecar["env"])


def test_unreachable_broker_is_retried_then_given_up_naming_what_is_left() -> None:
    scene = Scene.ready()
    sub = _ready(scene)
    scene.broker.reachable = False
    for attempt in range(LAST):
        result = scene.delete(sub, attempt)
        assert not result.done
        assert reasons(result.notes) == ["BrokerUnreachable"]
        assert f"cleanup attempt {attempt + 1} failed" in result.notes[0].message
    result = scene.delete(sub, LAST)
    assert result.done and reasons(result.notes) == ["TopologyLeftBehind"]
    message = result.notes[0].message
    assert f"gave up after {LAST + 1} attempts" in message
    assert QUEUE in message and naming.dead_letter_queue_name(QUEUE) in message


def test_syncbroker_gone_releases_at_once_and_leaves_the_queues() -> None:
    scene = Scene.ready()
    sub = _ready(scene)
    del scene.kube.sync_brokers[NS, "default"]
    result = scene.delete(sub)
    assert result.done and reasons(result.notes) == ["TopologyLeftBehind", "UserLeftBehind"]
    assert "SyncBroker" in result.notes[0].message and QUEUE in result.notes[0].message
    # Every queue left is named (namespace deletion: nobody else will say what leaked).
    assert all(name in result.notes[0].message for name in scene.broker.queues)
    assert QUEUE in scene.broker.queues
    # No broker to configure a sidecar with, but the last subscription's sidecar is still removed.
    assert scene.kube.sidecar(NS, "orders") is None


def test_forbidden_secret_releases_at_once() -> None:
    scene = Scene.ready()
    sub = _ready(scene)
    scene.kube.forbidden.add(("get", "Secret"))
    result = scene.delete(sub)
    assert result.done and reasons(result.notes)[:1] == ["TopologyLeftBehind"]
    assert "RBAC" in result.notes[0].message


def test_api_server_down_is_retried_then_given_up() -> None:
    scene = Scene.ready()
    sub = _ready(scene)
    scene.kube.unavailable = True
    first = scene.delete(sub, 0)
    assert not first.done and reasons(first.notes) == ["SecretUnavailable"]
    last = scene.delete(sub, LAST)
    assert last.done and reasons(last.notes) == ["TopologyLeftBehind"] and QUEUE in last.notes[0].message


def test_an_invalid_spec_releases_at_once() -> None:
    scene = Scene.ready()
    sub = scene.subscribe(events=[])
    result = scene.delete(sub)
    assert result.done and reasons(result.notes) == ["TopologyLeftBehind"]
    assert "SyncSubscription" in result.notes[0].message


def test_missing_deployment_is_not_worth_a_warning() -> None:
    scene = Scene.ready()
    sub = _ready(scene)
    del scene.kube.deployments[NS, "orders"]
    result = scene.delete(sub)
    assert result.done and reasons(result.notes) == ["TopologyDeleted", "CredentialsRemoved"]


def test_forbidden_deployment_is_a_warning_but_releases() -> None:
    scene = Scene.ready()
    sub = _ready(scene)
    scene.kube.forbidden.add(("patch", "Deployment"))
    result = scene.delete(sub)
    assert result.done and reasons(result.notes) == ["TopologyDeleted", "CredentialsRemoved", "ApplyFailed"]


def test_sidecar_conflict_is_retried_then_given_up_keeping_what_was_done() -> None:
    scene = Scene.ready()
    sub = _ready(scene)
    scene.kube.conflicts = SETTINGS.delete_give_up_attempts
    first = scene.delete(sub, 0)
    assert not first.done and reasons(first.notes) == ["TopologyDeleted", "CredentialsRemoved", "DeploymentConflict"]
    last = scene.delete(sub, LAST)
    assert last.done and reasons(last.notes) == ["TopologyDeleted", "SidecarLeftBehind"]
    assert f"Deployment {NS}/orders" in last.notes[-1].message


def test_permanent_broker_refusal_is_retried_too() -> None:
    scene = Scene.ready()
    sub = _ready(scene)
    scene.broker_error = AccessRefused("ACCESS_REFUSED")
    assert not scene.delete(sub, 0).done
    last = scene.delete(sub, LAST)
    assert last.done and reasons(last.notes) == ["TopologyLeftBehind"]


class _BrokenCluster(FakeCluster):
    """A port with a bug: something no error class covers."""

    def deployment(self, namespace: str, name: str) -> Mapping[str, Any]:
        raise KeyError("spec")


def test_unexpected_errors_never_crash_and_are_given_up() -> None:
    scene = Scene.ready()
    sub = _ready(scene)
    broken = _BrokenCluster(sync_brokers=scene.kube.sync_brokers, secrets=scene.kube.secrets)
    first = cleanup(sub, broken, scene.brokers, SETTINGS, 0)
    assert not first.done and reasons(first.notes) == ["CleanupFailed"] and "KeyError" in first.notes[0].message
    last = cleanup(sub, broken, scene.brokers, SETTINGS, LAST)
    assert last.done and reasons(last.notes) == ["TopologyLeftBehind"] and QUEUE in last.notes[0].message


@pytest.mark.parametrize(
    "error",
    [
        BrokerUnreachable("down"),
        AccessRefused("refused"),
        PreconditionFailed("inequivalent"),
        NotFound("no vhost"),
        InvalidEndpoint("bad CA"),
        Unavailable("Secret", NS, "rabbitmq"),
        Conflict("Deployment", NS, "orders"),
        RuntimeError("a bug"),
        # What the transport lets through today for an unloadable CA bundle.
        ssl.SSLError("[X509] no certificate or crl found"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_error_class_releases_the_finalizer_at_the_last_attempt(error: Exception) -> None:
    scene = Scene.ready()
    sub = _ready(scene)
    scene.factory_error = error
    if isinstance(error, KubeError):
        scene.factory_error = None
        scene.kube.unavailable = isinstance(error, Unavailable)
        scene.kube.conflicts = 100 if isinstance(error, Conflict) else 0
    result = scene.delete(sub, LAST)
    assert result.done, result.notes
    assert any(n.type == "Warning" for n in result.notes)


def test_the_default_budget_retries_for_minutes_not_seconds() -> None:
    """Issue 10 point 7: 3 attempts were about 6 s; the default now waits out a broker restart."""
    from rabbitsync.backoff import retry_delay
    from rabbitsync.operator.settings import OperatorSettings

    settings = OperatorSettings.from_env({"RABBITSYNC_CLUSTER": "east"})
    retries = range(settings.delete_give_up_attempts - 1)
    longest = sum(retry_delay(retry, settings.max_backoff_seconds, rng=lambda: 1.0) for retry in retries)
    shortest = sum(retry_delay(retry, settings.max_backoff_seconds, rng=lambda: 0.0) for retry in retries)
    assert longest >= 180 and shortest >= 120, "jitter never shortens the budget below two minutes"


class _BrokenPublicationCluster(FakeCluster):
    """A port with a bug in what only a publication's cleanup reads."""

    def live_publications(self, namespace: str, service: str) -> Any:
        raise ZeroDivisionError("a bug")


def test_an_unexpected_error_in_a_publication_cleanup_is_bounded_too() -> None:
    """Issue 10 point 8: the exception escaped to kopf, which retried it forever (a stuck finalizer)."""
    scene = Scene.ready()
    pub = scene.publish()
    broken = _BrokenPublicationCluster(
        sync_brokers=scene.kube.sync_brokers, secrets=scene.kube.secrets, publications=scene.kube.publications
    )
    from rabbitsync.operator.publication import cleanup_publication

    first = cleanup_publication(pub, broken, scene.brokers, SETTINGS, 0)
    assert not first.done and reasons(first.notes) == ["CleanupFailed"] and "ZeroDivisionError" in str(first.notes)
    last = cleanup_publication(pub, broken, scene.brokers, SETTINGS, LAST)
    assert last.done and any(n.type == "Warning" and "gave up" in n.message for n in last.notes)
