"""The Kubernetes port: exactly what the operator reads and writes beyond the object it reconciles.

``ApiCluster`` implements it over kopf's indexes and single GETs, ``FakeCluster`` in memory; reconcile,
cleanup and injection only know this interface, so every failure path is unit-tested without an API
server. Every method raises ``KubeError`` subclasses only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rabbitsync.api.syncbroker import SyncBrokerSpec
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
        return cls(body["apiVersion"], body["kind"], meta["namespace"], meta["name"], meta.get("uid"))


@dataclass(frozen=True)
class LiveSubscription:
    """A SyncSubscription that is not being deleted, as its service's sidecar must serve it."""

    name: str
    spec: SyncSubscriptionSpec


class Cluster(Protocol):
    def sync_broker(self, namespace: str, name: str) -> SyncBrokerSpec:
        """The SyncBroker's spec. ``NotFound`` also while it is being deleted: it must not be used anew."""
        ...

    def secret(self, namespace: str, name: str) -> Mapping[str, bytes]:
        """The Secret's data, decoded (``Invalid`` if a value is not base64)."""
        ...

    def live_subscriptions(self, namespace: str, service: str) -> list[LiveSubscription]:
        """The SyncSubscriptions naming ``service``, not being deleted, sorted by name.

        ``Invalid`` names the first whose spec the model refuses: a sidecar built without it would
        silently stop consuming its queue.
        """
        ...

    def deployment(self, namespace: str, name: str) -> Mapping[str, Any]:
        """The Deployment as JSON (camelCase keys, as the API serves it)."""
        ...

    def apply_sidecar(self, namespace: str, deployment: str, container: Mapping[str, Any] | None) -> None:
        """Server-side apply (field manager ``rabbitsync-operator``) of our one container, or of none."""
        ...

    def post_events(self, about: ObjectRef, notes: Sequence[Note]) -> None:
        """Kubernetes Events on ``about``; a failure to post is logged, never raised."""
        ...
