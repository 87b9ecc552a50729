"""The Kubernetes port against a real API server: kopf's indexes for our own kinds, single GETs otherwise.

Brokers and the subscriptions and publications of a service come from kopf's indexes (no LIST per
reconcile); Secrets and Deployments are one GET each, so RBAC needs no ``list``/``watch`` on them,
read once per handler call (a reconcile looks at the service's Deployment for the rollout, the
credentials and the sidecar) and parsed as plain JSON: the client's models, built and then turned
back into dicts, were half the cost of a Deployment read at 1,000 subscriptions. A
service's credentials Secret is created, replaced (at its resourceVersion) and deleted by name; the
sidecar is written by server-side apply with the operator's field manager; Events go through kopf's poster.
Kubernetes client and urllib3 errors are turned into ``KubeError`` here and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal, cast

import kopf
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from rabbitsync.api.clustersyncbroker import ClusterSyncBrokerSpec
from rabbitsync.api.meta import GROUP, VERSION
from rabbitsync.api.syncbroker import SyncBrokerSpec
from rabbitsync.api.syncpublication import SyncPublicationSpec
from rabbitsync.api.syncsubscription import RESOURCE as SUBSCRIPTION
from rabbitsync.api.syncsubscription import SyncSubscriptionSpec
from rabbitsync.operator import sidecar_spec
from rabbitsync.operator.kube import decode
from rabbitsync.operator.kube.errors import Conflict, Forbidden, Invalid, KubeError, NotFound, Unavailable
from rabbitsync.operator.kube.indexes import BrokerIndex, SubscriptionIndex
from rabbitsync.operator.kube.port import LivePublication, LiveSubscription, ObjectRef, SecretWrite, StoredSecret
from rabbitsync.operator.status import Note

# Events are short notes (events.k8s.io refuses more than 1 KiB); the status keeps the full message.
_EVENT_MESSAGE_LIMIT = 1024


def api_client(threads: int) -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the KUBECONFIG (as kopf itself does).

    ``threads``: how many threads share the client. urllib3 keeps 5 connections per core by default
    (10 on 2 cores): with more handler threads, every call beyond those opened a new TLS connection
    and threw it away after ("Connection pool is full, discarding connection").
    """
    configuration = client.Configuration()
    # kubernetes' config loaders carry no annotations.
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize, threads)
    return client.ApiClient(configuration)


class ApiCluster:
    """``Cluster`` for one API server, as seen by one handler call (the indexes are kopf's live ones)."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        sync_brokers: BrokerIndex,
        subscriptions: SubscriptionIndex,
        publications: SubscriptionIndex | None = None,
        cluster_brokers: BrokerIndex | None = None,
    ) -> None:
        self._api = api
        self._read: dict[tuple[str, str, str], dict[str, Any]] = {}
        """(kind, namespace, name) -> the object as read during this handler call, until written."""
        self._live: dict[tuple[str, str], list[LiveSubscription]] = {}
        """(namespace, service) -> its live subscriptions, decoded once per handler call."""
        self._brokers = sync_brokers
        self._subscriptions = subscriptions
        self._publications = publications or {}
        self._cluster_brokers = cluster_brokers or {}

    def sync_broker(self, namespace: str, name: str) -> SyncBrokerSpec:
        return decode.sync_broker(namespace, name, next(iter(self._brokers.get((namespace, name), ())), None))

    def cluster_sync_broker(self, name: str) -> ClusterSyncBrokerSpec:
        return decode.cluster_sync_broker(name, next(iter(self._cluster_brokers.get(("", name), ())), None))

    def _get(self, kind: Literal["Secret", "Deployment"], namespace: str, name: str) -> dict[str, Any]:
        key = (kind, namespace, name)
        if key not in self._read:
            read = (
                client.CoreV1Api(self._api).read_namespaced_secret
                if kind == "Secret"
                else client.AppsV1Api(self._api).read_namespaced_deployment
            )
            with _translated(kind, namespace, name):
                response = cast(urllib3.BaseHTTPResponse, read(name, namespace, _preload_content=False))
                try:
                    self._read[key] = json.loads(response.data)
                finally:
                    response.release_conn()
        return self._read[key]

    def secret(self, namespace: str, name: str) -> Mapping[str, bytes]:
        return decode.secret_data(namespace, name, self._get("Secret", namespace, name).get("data"))

    def stored_secret(self, namespace: str, name: str) -> StoredSecret | None:
        try:
            secret = self._get("Secret", namespace, name)
        except NotFound:
            return None
        meta = secret.get("metadata") or {}
        return StoredSecret(
            data=decode.secret_data(namespace, name, secret.get("data")),
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
            resource_version=str(meta.get("resourceVersion")),
        )

    def write_secret(self, namespace: str, secret: SecretWrite) -> None:
        # The client takes plain JSON as well as its models; the same body as the fake stores.
        body = cast(client.V1Secret, decode.secret_body(namespace, secret))
        core = client.CoreV1Api(self._api)
        self._read.pop(("Secret", namespace, secret.name), None)
        if secret.resource_version is None:
            with _translated("Secret", namespace, secret.name, action="created"):
                _discard(core.create_namespaced_secret(namespace, body, _preload_content=False))
        else:
            with _translated("Secret", namespace, secret.name, action="replaced"):
                _discard(core.replace_namespaced_secret(secret.name, namespace, body, _preload_content=False))

    def delete_secret(self, namespace: str, name: str) -> None:
        self._read.pop(("Secret", namespace, name), None)
        try:
            with _translated("Secret", namespace, name, action="deleted"):
                client.CoreV1Api(self._api).delete_namespaced_secret(name, namespace)
        except NotFound:
            pass

    def subscription_names(self) -> set[tuple[str, str]]:
        return {(namespace, s.name) for (namespace, _), entries in self._subscriptions.items() for s in entries}

    def live_subscriptions(self, namespace: str, service: str) -> list[LiveSubscription]:
        # Asked by the credentials and the sidecar of every reconcile: a service with a hundred
        # subscriptions is a hundred specs to validate each time.
        if (namespace, service) not in self._live:
            entries = sorted(self._subscriptions.get((namespace, service), ()), key=lambda s: s.name)
            self._live[namespace, service] = [
                LiveSubscription(
                    s.name, decode.spec(SyncSubscriptionSpec, "SyncSubscription", namespace, s.name, s.spec), s.uid
                )
                for s in entries
            ]
        return list(self._live[namespace, service])

    def live_publications(self, namespace: str, service: str) -> list[LivePublication]:
        entries = sorted(self._publications.get((namespace, service), ()), key=lambda s: s.name)
        return [
            LivePublication(
                s.name, decode.spec(SyncPublicationSpec, "SyncPublication", namespace, s.name, s.spec), s.uid
            )
            for s in entries
        ]

    def deployment(self, namespace: str, name: str) -> Mapping[str, Any]:
        return self._get("Deployment", namespace, name)

    def apply_sidecar(
        self, namespace: str, deployment: str, container: Mapping[str, Any] | None, credentials: str | None = None
    ) -> None:
        self._read.pop(("Deployment", namespace, deployment), None)
        with _translated("Deployment", namespace, deployment, action="patched"):
            response = client.AppsV1Api(self._api).patch_namespaced_deployment(
                deployment,
                namespace,
                sidecar_spec.apply_body(deployment, namespace, container, credentials),
                field_manager=sidecar_spec.FIELD_MANAGER,
                # Our field manager owns the container outright; nobody else should be setting it.
                force=True,
                _content_type="application/apply-patch+yaml",
                _preload_content=False,
            )
            _discard(response)

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


def _discard(response: object) -> None:
    """A write's response, not preloaded and not needed: read to its end, so the connection goes back to
    the pool. (Not preloaded, the client hands back urllib3's response, whatever its annotations say.)"""
    raw = cast(urllib3.BaseHTTPResponse, response)
    raw.drain_conn()
    raw.release_conn()


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


def annotate_subscription(api: client.ApiClient, namespace: str, name: str, annotations: Mapping[str, str]) -> None:
    """Merge-patch ``annotations`` onto a SyncSubscription (the drift sweep's request for a reconcile)."""
    with _translated("SyncSubscription", namespace, name, action="patch"):
        client.CustomObjectsApi(api).patch_namespaced_custom_object(
            GROUP, VERSION, namespace, SUBSCRIPTION.plural, name, {"metadata": {"annotations": dict(annotations)}}
        )
