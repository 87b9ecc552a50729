"""The Kubernetes port: the fake refuses what the API server refuses, the real one translates what it says.

The fake and ``ApiCluster`` must agree, or unit tests would pass on behaviour the cluster rejects:
both read through ``kube.decode``, and ``ApiCluster``'s translation of API errors is checked here
against the client's own exception, the index functions against kopf's semantics.
"""

from __future__ import annotations

import base64
import io
import json
import types
from typing import Any

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rabbitsync.operator import kube, sidecar_spec
from rabbitsync.operator.kube import Conflict, Forbidden, Invalid, KubeError, NotFound, ObjectRef, Unavailable, indexes
from rabbitsync.operator.kube.api import ApiCluster
from rabbitsync.operator.kube.fake import FakeCluster
from rabbitsync.operator.status import Note

pytestmark = pytest.mark.unit

NS = "shop"
SIDECAR = {"name": sidecar_spec.CONTAINER_NAME, "image": "shop/orders:1"}


def _fake() -> FakeCluster:
    kube = FakeCluster()
    kube.add_sync_broker(NS, "default", {"secretRef": {"name": "rabbitmq"}})
    kube.add_secret(NS, "rabbitmq", uri="amqp://b/")
    kube.add_deployment(NS, "orders", [{"name": "app", "image": "shop/orders:1"}])
    return kube


@pytest.mark.parametrize(
    ("read", "reason"),
    [
        (lambda k: k.sync_broker(NS, "nope"), "SyncBrokerNotFound"),
        (lambda k: k.secret(NS, "nope"), "SecretNotFound"),
        (lambda k: k.deployment(NS, "nope"), "DeploymentNotFound"),
    ],
)
def test_missing_objects_are_404(read: Any, reason: str) -> None:
    with pytest.raises(NotFound) as e:
        read(_fake())
    assert e.value.reason == reason and e.value.permanent and "shop/nope not found" in str(e.value)


def test_secret_data_is_decoded_and_bad_base64_refused() -> None:
    kube = _fake()
    assert kube.secret(NS, "rabbitmq") == {"uri": b"amqp://b/"}
    kube.secrets[NS, "rabbitmq"]["uri"] = "%%%"
    with pytest.raises(Invalid, match="'uri' is not valid base64"):
        kube.secret(NS, "rabbitmq")


def test_simulated_rbac_refuses_reads_and_writes() -> None:
    kube = _fake()
    kube.forbidden |= {("get", "Secret"), ("patch", "Deployment")}
    with pytest.raises(Forbidden, match="may not be read by the operator"):
        kube.secret(NS, "rabbitmq")
    with pytest.raises(Forbidden, match="may not be patched by the operator") as e:
        kube.apply_sidecar(NS, "orders", SIDECAR)
    assert e.value.reason == "DeploymentForbidden" and kube.applied == []
    assert kube.deployment(NS, "orders")


def test_an_armed_conflict_refuses_one_apply() -> None:
    kube = _fake()
    kube.conflicts = 1
    with pytest.raises(Conflict) as e:
        kube.apply_sidecar(NS, "orders", SIDECAR)
    assert not e.value.permanent
    kube.apply_sidecar(NS, "orders", SIDECAR)
    assert kube.sidecar(NS, "orders") == SIDECAR


def test_apply_replaces_then_removes_only_our_container() -> None:
    kube = _fake()
    kube.apply_sidecar(NS, "orders", SIDECAR)
    kube.apply_sidecar(NS, "orders", {**SIDECAR, "image": "shop/orders:2"})
    spec = kube.deployment(NS, "orders")["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["app"]
    assert [c["name"] for c in spec["initContainers"]] == [sidecar_spec.CONTAINER_NAME]
    kube.apply_sidecar(NS, "orders", None)
    assert kube.sidecar(NS, "orders") is None and kube.applied[-1] == (NS, "orders", None)


def test_apply_cannot_create_a_deployment_from_our_partial_body() -> None:
    with pytest.raises(Invalid):
        _fake().apply_sidecar(NS, "missing", SIDECAR)


def test_deleting_syncbroker_is_not_found_with_the_reason() -> None:
    kube = _fake()
    kube.sync_brokers[NS, "default"].deleting = True
    with pytest.raises(NotFound, match="being deleted"):
        kube.sync_broker(NS, "default")


def test_unavailable_api_server_is_temporary() -> None:
    kube = _fake()
    kube.unavailable = True
    with pytest.raises(Unavailable) as e:
        kube.deployment(NS, "orders")
    assert not e.value.permanent and e.value.reason == "DeploymentUnavailable"


def test_live_subscriptions_are_sorted_skip_deleted_and_other_services() -> None:
    kube = _fake()
    kube.add_subscription(NS, "b", {"service": "orders", "events": ["x"]})
    kube.add_subscription(NS, "a", {"service": "orders", "events": ["x"]})
    kube.add_subscription(NS, "gone", {"service": "orders", "events": ["x"]}, deleting=True)
    kube.add_subscription(NS, "other", {"service": "menu", "events": ["x"]})
    kube.add_subscription("elsewhere", "c", {"service": "orders", "events": ["x"]})
    assert [s.name for s in kube.live_subscriptions(NS, "orders")] == ["a", "b"]
    kube.add_subscription(NS, "bad", {"service": "orders", "events": "x"})
    with pytest.raises(Invalid, match="SyncSubscription shop/bad is invalid: spec: events"):
        kube.live_subscriptions(NS, "orders")


def test_events_are_recorded() -> None:
    kube = _fake()
    about = ObjectRef("rabbitsync.io/v1alpha1", "SyncSubscription", NS, "orders", "uid-1")
    kube.post_events(about, [Note("Normal", "Synced", "ok")])
    assert kube.events == [(about, Note("Normal", "Synced", "ok"))]


# The index functions, as kopf calls them.


def _body(kind: str, name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"namespace": NS, "name": name, **meta}, "spec": spec}


def test_subscriptions_are_indexed_by_service_and_dropped_when_deleted() -> None:
    live = _body("SyncSubscription", "s", {"service": "orders", "events": ["x"]})
    entry = indexes.subscriptions_by_service(live)
    assert entry == {(NS, "orders"): indexes.IndexedSubscription("s", {"service": "orders", "events": ["x"]})}
    # An empty dict (not None) is what makes kopf purge the values indexed before.
    assert indexes.subscriptions_by_service({**live, "metadata": {**live["metadata"], "deletionTimestamp": "t"}}) == {}
    assert indexes.subscriptions_by_service(_body("SyncSubscription", "s", {"service": 3})) == {}


def test_indexed_specs_are_copies() -> None:
    body = _body("SyncBroker", "default", {"secretRef": {"name": "rabbitmq"}})
    entry = indexes.sync_brokers(body)[NS, "default"]
    body["spec"]["secretRef"]["name"] = "changed"
    assert entry.spec == {"secretRef": {"name": "rabbitmq"}} and not entry.deleting


# ApiCluster: the indexes answer, the client's errors are translated.


def _api_cluster(brokers: dict[Any, Any] | None = None, subscriptions: dict[Any, Any] | None = None) -> ApiCluster:
    return ApiCluster(
        client.ApiClient(client.Configuration()), sync_brokers=brokers or {}, subscriptions=subscriptions or {}
    )


def test_api_cluster_reads_syncbrokers_and_subscriptions_from_the_indexes() -> None:
    broker = indexes.sync_brokers(_body("SyncBroker", "default", {"secretRef": {"name": "rabbitmq"}}))
    deleting = indexes.sync_brokers(_body("SyncBroker", "old", {"secretRef": {"name": "x"}}, deletionTimestamp="t"))
    subs = [
        indexes.subscriptions_by_service(_body("SyncSubscription", n, {"service": "orders", "events": ["x"]}))
        for n in ("b", "a")
    ]
    cluster = _api_cluster(
        {**{k: [v] for k, v in broker.items()}, **{k: [v] for k, v in deleting.items()}},
        {(NS, "orders"): [s[NS, "orders"] for s in subs]},
    )
    assert cluster.sync_broker(NS, "default").secret_ref.name == "rabbitmq"
    with pytest.raises(NotFound, match="being deleted"):
        cluster.sync_broker(NS, "old")
    with pytest.raises(NotFound):
        cluster.sync_broker(NS, "nope")
    assert [s.name for s in cluster.live_subscriptions(NS, "orders")] == ["a", "b"]
    assert cluster.live_subscriptions(NS, "menu") == []


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (404, NotFound),
        (403, Forbidden),
        (409, Conflict),
        (422, Invalid),
        (400, Invalid),
        (500, Unavailable),
        (429, Unavailable),
        (401, Unavailable),
    ],
)
def test_api_errors_are_translated(monkeypatch: pytest.MonkeyPatch, status: int, error: type[KubeError]) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise ApiException(status=status, reason="Refused", body=json.dumps({"message": "because"}))

    monkeypatch.setattr(client.CoreV1Api, "read_namespaced_secret", refuse)
    with pytest.raises(error) as e:
        _api_cluster().secret(NS, "rabbitmq")
    assert type(e.value) is error and e.value.kind == "Secret"


def test_connection_errors_are_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise urllib3.exceptions.MaxRetryError(None, "/api", "connection refused")  # type: ignore[arg-type]

    monkeypatch.setattr(client.AppsV1Api, "read_namespaced_deployment", refuse)
    with pytest.raises(Unavailable):
        _api_cluster().deployment(NS, "orders")


def _raw(body: dict[str, Any]) -> urllib3.HTTPResponse:
    """What the client hands back for ``_preload_content=False``: urllib3's response, not read yet."""
    return urllib3.HTTPResponse(body=io.BytesIO(json.dumps(body).encode()), status=200, preload_content=False)


def test_secrets_are_decoded_by_the_api_cluster_too(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = {"data": {"uri": base64.b64encode(b"amqp://b/").decode(), "bad": "%%%"}}
    monkeypatch.setattr(client.CoreV1Api, "read_namespaced_secret", lambda *_, **__: _raw(secret))
    with pytest.raises(Invalid, match="'bad'"):
        _api_cluster().secret(NS, "rabbitmq")


def test_a_handler_call_reads_an_object_once_and_again_after_writing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reconcile looks at the service's Deployment three times (rollout, credentials, sidecar)."""
    reads: list[str] = []

    def read(_: Any, name: str, namespace: str, **options: Any) -> urllib3.HTTPResponse:
        assert options == {"_preload_content": False}, "the client's models are not built"
        reads.append(name)
        return _raw({"metadata": {"name": name, "generation": len(reads)}})

    monkeypatch.setattr(client.AppsV1Api, "read_namespaced_deployment", read)
    monkeypatch.setattr(client.AppsV1Api, "patch_namespaced_deployment", lambda *_, **__: _raw({}))
    cluster = _api_cluster()
    assert (
        cluster.deployment(NS, "orders")
        == cluster.deployment(NS, "orders")
        == {"metadata": {"name": "orders", "generation": 1}}
    )
    cluster.apply_sidecar(NS, "orders", None)
    assert cluster.deployment(NS, "orders")["metadata"]["generation"] == 2
    assert reads == ["orders", "orders"]
    assert _api_cluster().deployment(NS, "orders")["metadata"]["generation"] == 3, "a new handler call reads again"


def test_sidecar_is_server_side_applied_with_our_field_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(
        client.AppsV1Api, "patch_namespaced_deployment", lambda _, *a, **kw: calls.append((a, kw)) or _raw({})
    )
    _api_cluster().apply_sidecar(NS, "orders", None)
    (name, namespace, body), options = calls[0]
    assert (name, namespace) == ("orders", NS) and body == sidecar_spec.apply_body("orders", NS, None)
    assert options["field_manager"] == "rabbitsync-operator" and options["force"] is True
    assert options["_content_type"] == "application/apply-patch+yaml"


def test_the_port_package_exports_exactly_its_public_names() -> None:
    public = {n for n, v in vars(kube).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    assert public == set(kube.__all__)
