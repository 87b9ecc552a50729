"""The Kubernetes port: exactly what the operator reads and writes beyond the object it reconciles.

``ApiCluster`` implements it over kopf's indexes and single GETs, ``FakeCluster`` in memory; reconcile,
cleanup and injection only know this interface, so every failure path is unit-tested without an API
server. Every method raises ``KubeError`` subclasses only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rabbitsync.api.clustersyncbroker import ClusterSyncBrokerSpec
from rabbitsync.api.syncbroker import SyncBrokerSpec
from rabbitsync.api.syncpublication import SyncPublicationSpec
from rabbitsync.api.syncsubscription import SyncSubscriptionSpec
from rabbitsync.operator.status import Note


@dataclass(frozen=True)
class ObjectRef:
    """The object an Event is about."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> ObjectRef:
        meta = body["metadata"]
        # Cluster-scoped objects (ClusterSyncBroker) have no namespace.
        return cls(body["apiVersion"], body["kind"], meta.get("namespace") or "", meta["name"], meta.get("uid"))


@dataclass(frozen=True)
class LiveSubscription:
    """A SyncSubscription that is not being deleted, as its service's sidecar must serve it."""

    name: str
    spec: SyncSubscriptionSpec
    uid: str = ""
    """Names it as an owner of its service's credentials Secret (empty: unknown, not an owner)."""


@dataclass(frozen=True)
class LivePublication:
    """A SyncPublication that is not being deleted: its types are part of its service's rights."""

    name: str
    spec: SyncPublicationSpec
    uid: str = ""


@dataclass(frozen=True)
class StoredSecret:
    """A Secret as read: its data decoded, and what the operator needs of its metadata."""

    data: Mapping[str, bytes] = field(repr=False)
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    resource_version: str


@dataclass(frozen=True)
class SecretWrite:
    """A whole Secret the operator owns, to create (``resource_version`` None) or replace."""

    name: str
    data: Mapping[str, bytes] = field(repr=False)
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    owners: tuple[ObjectRef, ...]
    resource_version: str | None


class Cluster(Protocol):
    def sync_broker(self, namespace: str, name: str) -> SyncBrokerSpec:
        """The SyncBroker's spec. ``NotFound`` also while it is being deleted: it must not be used anew."""
        ...

    def cluster_sync_broker(self, name: str) -> ClusterSyncBrokerSpec:
        """The ClusterSyncBroker's spec; ``NotFound`` also while it is being deleted."""
        ...

    def secret(self, namespace: str, name: str) -> Mapping[str, bytes]:
        """The Secret's data, decoded (``Invalid`` if a value is not base64)."""
        ...

    def stored_secret(self, namespace: str, name: str) -> StoredSecret | None:
        """The Secret with its labels, annotations and resourceVersion; None if there is none."""
        ...

    def write_secret(self, namespace: str, secret: SecretWrite) -> None:
        """Create the Secret, or replace it at ``resource_version`` (``Conflict`` if it changed meanwhile)."""
        ...

    def delete_secret(self, namespace: str, name: str) -> None:
        """Delete the Secret; none there is no error."""
        ...

    def live_publications(self, namespace: str, service: str) -> list[LivePublication]:
        """The SyncPublications naming ``service``, not being deleted, sorted by name (``Invalid`` as above)."""
        ...

    def live_subscriptions(self, namespace: str, service: str) -> list[LiveSubscription]:
        """The SyncSubscriptions naming ``service``, not being deleted, sorted by name.

        ``Invalid`` names the first whose spec the model refuses: a sidecar built without it would
        silently stop consuming its queue.
        """
        ...

    def subscription_names(self) -> set[tuple[str, str]]:
        """(namespace, name) of every live SyncSubscription this operator watches, whatever its spec says."""
        ...

    def deployment(self, namespace: str, name: str) -> Mapping[str, Any]:
        """The Deployment as JSON (camelCase keys, as the API serves it)."""
        ...

    def apply_sidecar(
        self, namespace: str, deployment: str, container: Mapping[str, Any] | None, credentials: str | None = None
    ) -> None:
        """Server-side apply (field manager ``rabbitsync-operator``) of our one container, or of none, with the
        pod template's credentials checksum."""
        ...

    def post_events(self, about: ObjectRef, notes: Sequence[Note]) -> None:
        """Kubernetes Events on ``about``; a failure to post is logged, never raised."""
        ...
