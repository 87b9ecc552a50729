"""The Kubernetes port against a real API server: kopf's indexes for our own kinds, single GETs otherwise.

SyncBrokers and the subscriptions of a service come from kopf's indexes (no LIST per reconcile);
Secrets and Deployments are one GET each, so RBAC needs only ``get`` on them; the sidecar is written
by server-side apply with the operator's field manager; Events go through kopf's poster.
Kubernetes client and urllib3 errors are turned into ``KubeError`` here and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

import kopf
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from rabbitsync.api.syncbroker import SyncBrokerSpec
from rabbitsync.api.syncsubscription import SyncSubscriptionSpec
from rabbitsync.operator import sidecar_spec
from rabbitsync.operator.kube import decode
from rabbitsync.operator.kube.errors import Conflict, Forbidden, Invalid, KubeError, NotFound, Unavailable
from rabbitsync.operator.kube.indexes import BrokerIndex, SubscriptionIndex
from rabbitsync.operator.kube.port import LiveSubscription, ObjectRef
from rabbitsync.operator.status import Note

# Events are short notes (events.k8s.io refuses more than 1 KiB); the status keeps the full message.
_EVENT_MESSAGE_LIMIT = 1024


def api_client() -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the KUBECONFIG (as kopf itself does)."""
    # kubernetes' config loaders carry no annotations.
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        return client.ApiClient()
    except config.ConfigException:
        return cast(client.ApiClient, config.new_client_from_config())  # type: ignore[no-untyped-call]


class ApiCluster:
    """``Cluster`` for one API server, as seen by one handler call (the indexes are kopf's live ones)."""

    def __init__(self, api: client.ApiClient, *, sync_brokers: BrokerIndex, subscriptions: SubscriptionIndex) -> None:
        self._api = api
        self._brokers = sync_brokers
        self._subscriptions = subscriptions

    def sync_broker(self, namespace: str, name: str) -> SyncBrokerSpec:
        return decode.sync_broker(namespace, name, next(iter(self._brokers.get((namespace, name), ())), None))

    def secret(self, namespace: str, name: str) -> Mapping[str, bytes]:
        with _translated("Secret", namespace, name):
            secret = client.CoreV1Api(self._api).read_namespaced_secret(name, namespace)
        return decode.secret_data(namespace, name, secret.data)

    def live_subscriptions(self, namespace: str, service: str) -> list[LiveSubscription]:
        entries = sorted(self._subscriptions.get((namespace, service), ()), key=lambda s: s.name)
        return [
            LiveSubscription(s.name, decode.spec(SyncSubscriptionSpec, "SyncSubscription", namespace, s.name, s.spec))
            for s in entries
        ]

    def deployment(self, namespace: str, name: str) -> Mapping[str, Any]:
        with _translated("Deployment", namespace, name):
            found = client.AppsV1Api(self._api).read_namespaced_deployment(name, namespace)
        serialized = self._api.sanitize_for_serialization(found)  # type: ignore[no-untyped-call]
        return cast(Mapping[str, Any], serialized)

    def apply_sidecar(self, namespace: str, deployment: str, container: Mapping[str, Any] | None) -> None:
        with _translated("Deployment", namespace, deployment, action="patched"):
            client.AppsV1Api(self._api).patch_namespaced_deployment(
                deployment,
                namespace,
                sidecar_spec.apply_body(deployment, namespace, container),
                field_manager=sidecar_spec.FIELD_MANAGER,
                # Our field manager owns the container outright; nobody else should be setting it.
                force=True,
                _content_type="application/apply-patch+yaml",
            )

    def post_events(self, about: ObjectRef, notes: Sequence[Note]) -> None:
        body = kopf.Body(
            cast(
                kopf.RawBody,
                {
                    "apiVersion": about.api_version,
                    "kind": about.kind,
                    "metadata": {"namespace": about.namespace, "name": about.name, "uid": about.uid},
                },
            )
        )
        for note in notes:
            kopf.event(body, type=note.type, reason=note.reason, message=note.message[:_EVENT_MESSAGE_LIMIT])


@contextmanager
def _translated(kind: str, namespace: str, name: str, *, action: str = "read") -> Iterator[None]:
    try:
        yield
    except ApiException as e:
        raise _error(e, kind, namespace, name, action) from e
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise Unavailable(kind, namespace, name, f"{type(e).__name__}: {e}") from e


def _error(e: ApiException, kind: str, namespace: str, name: str, action: str) -> KubeError:
    detail = _message(e)
    match e.status:
        case 404:
            return NotFound(kind, namespace, name)
        case 403:
            return Forbidden(kind, namespace, name, detail, action=action)
        case 409:
            return Conflict(kind, namespace, name, detail)
        case 400 | 422:
            return Invalid(kind, namespace, name, detail)
        case _:  # 401 while a token is refreshed, 429, 5xx: all pass
            return Unavailable(kind, namespace, name, f"HTTP {e.status}: {detail}")


def _message(e: ApiException) -> str:
    """The API server's own explanation (the Status object's message), else the HTTP reason."""
    try:
        message = json.loads(e.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or e.reason or "")
