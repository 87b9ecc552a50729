"""An in-memory Kubernetes with the API server's refusals, for unit tests of reconcile, cleanup and injection.

Like ``rabbitsync.amqp.FakeBroker`` for the broker, it refuses what the real thing refuses: 404 on a
missing object, 403 on what simulated RBAC forbids, 409 when a conflict is armed, undecodable Secret
data, a SyncBroker being deleted, a sibling whose spec the model refuses, and an apply that would
create a Deployment from our partial body, a create of a Secret that exists, a replace at a stale
resourceVersion. It shares ``decode`` with ``ApiCluster``, so both read and write alike.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rabbitsync.api.clustersyncbroker import ClusterSyncBrokerSpec
from rabbitsync.api.syncbroker import SyncBrokerSpec
from rabbitsync.api.syncpublication import SyncPublicationSpec
from rabbitsync.api.syncsubscription import SyncSubscriptionSpec
from rabbitsync.operator import sidecar_spec
from rabbitsync.operator.kube import decode
from rabbitsync.operator.kube.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from rabbitsync.operator.kube.port import LivePublication, LiveSubscription, ObjectRef, SecretWrite, StoredSecret
from rabbitsync.operator.status import Note

Verb = Literal["get", "patch", "create", "update", "delete"]
Key = tuple[str, str]


@dataclass
class FakeObject:
    spec: dict[str, Any]
    deleting: bool = False
    uid: str = ""


@dataclass
class FakeCluster:
    sync_brokers: dict[Key, FakeObject] = field(default_factory=dict)
    subscriptions: dict[Key, FakeObject] = field(default_factory=dict)
    publications: dict[Key, FakeObject] = field(default_factory=dict)
    cluster_brokers: dict[str, FakeObject] = field(default_factory=dict)
    secrets: dict[Key, dict[str, str]] = field(default_factory=dict)
    """Secret ``data`` as the API serves it: base64 text per key."""
    secret_meta: dict[Key, dict[str, Any]] = field(default_factory=dict)
    """Secret ``metadata`` (labels, annotations, ownerReferences, resourceVersion) for those that have it."""
    deployments: dict[Key, dict[str, Any]] = field(default_factory=dict)
    forbidden: set[tuple[Verb, str]] = field(default_factory=set)
    """Simulated RBAC: (verb, kind) pairs the operator may not use, e.g. ("get", "Secret")."""
    conflicts: int = 0
    """How many of the next applies the API server answers 409."""
    secret_conflicts: int = 0
    """How many of the next Secret writes the API server answers 409 (another writer was first)."""
    unavailable: bool = False
    """The API server is down: every GET and apply fails (indexes, being memory, still answer)."""
    applied: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)
    """Every accepted apply: (namespace, deployment, container or None)."""
    events: list[tuple[ObjectRef, Note]] = field(default_factory=list)

    # Setting the scene.

    def add_secret(self, namespace: str, name: str, **values: str) -> None:
        self.secrets[namespace, name] = {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}

    def add_sync_broker(self, namespace: str, name: str, spec: Mapping[str, Any], *, deleting: bool = False) -> None:
        self.sync_brokers[namespace, name] = FakeObject(dict(spec), deleting)

    def add_subscription(self, namespace: str, name: str, spec: Mapping[str, Any], *, deleting: bool = False) -> None:
        self.subscriptions[namespace, name] = FakeObject(dict(spec), deleting, f"uid-sub-{name}")

    def add_publication(self, namespace: str, name: str, spec: Mapping[str, Any], *, deleting: bool = False) -> None:
        self.publications[namespace, name] = FakeObject(dict(spec), deleting, f"uid-pub-{name}")

    def add_cluster_broker(self, name: str, spec: Mapping[str, Any], *, deleting: bool = False) -> None:
        self.cluster_brokers[name] = FakeObject(dict(spec), deleting)

    def secret_text(self, namespace: str, name: str) -> dict[str, str]:
        """A Secret's values as text, for assertions."""
        return {k: base64.b64decode(v).decode() for k, v in self.secrets[namespace, name].items()}

    def add_deployment(
        self,
        namespace: str,
        name: str,
        containers: Sequence[Mapping[str, Any]],
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        """A Deployment, opted in to injection unless ``annotations`` says otherwise."""
        if annotations is None:
            annotations = {sidecar_spec.INJECT_ANNOTATION: "true"}
        self.deployments[namespace, name] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"namespace": namespace, "name": name, "annotations": dict(annotations)},
            "spec": {"template": {"spec": {"containers": [dict(c) for c in containers]}}},
        }

    def sidecar(self, namespace: str, deployment: str) -> dict[str, Any] | None:
        """Our sidecar, native or of an older release (a regular container)."""
        found = sidecar_spec.injected(self.deployments[namespace, deployment])
        return dict(found) if found is not None else None

    # The port.

    def sync_broker(self, namespace: str, name: str) -> SyncBrokerSpec:
        self._check("get", "SyncBroker", namespace, name, api_server=False)
        return decode.sync_broker(namespace, name, self.sync_brokers.get((namespace, name)))

    def cluster_sync_broker(self, name: str) -> ClusterSyncBrokerSpec:
        self._check("get", "ClusterSyncBroker", "", name, api_server=False)
        return decode.cluster_sync_broker(name, self.cluster_brokers.get(name))

    def secret(self, namespace: str, name: str) -> Mapping[str, bytes]:
        self._check("get", "Secret", namespace, name)
        if (namespace, name) not in self.secrets:
            raise NotFound("Secret", namespace, name)
        return decode.secret_data(namespace, name, self.secrets[namespace, name])

    def stored_secret(self, namespace: str, name: str) -> StoredSecret | None:
        try:
            data = self.secret(namespace, name)
        except NotFound:
            return None
        meta = self.secret_meta.get((namespace, name), {})
        return StoredSecret(
            data=data,
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
            resource_version=str(meta.get("resourceVersion", "1")),
        )

    def write_secret(self, namespace: str, secret: SecretWrite) -> None:
        key = (namespace, secret.name)
        creating = secret.resource_version is None
        self._check("create" if creating else "update", "Secret", namespace, secret.name)
        if self.secret_conflicts:
            self.secret_conflicts -= 1
            raise Conflict("Secret", namespace, secret.name, "the object has been modified")
        current = self.secret_meta.get(key, {}).get("resourceVersion", "1")
        if creating and key in self.secrets:
            raise Conflict("Secret", namespace, secret.name, "already exists")
        if not creating and (key not in self.secrets or secret.resource_version != current):
            raise Conflict("Secret", namespace, secret.name, "the object has been modified")
        body = decode.secret_body(namespace, secret)
        self.secrets[key] = body["data"]
        self.secret_meta[key] = {**body["metadata"], "resourceVersion": str(int(current) + (0 if creating else 1))}

    def delete_secret(self, namespace: str, name: str) -> None:
        self._check("delete", "Secret", namespace, name)
        self.secrets.pop((namespace, name), None)
        self.secret_meta.pop((namespace, name), None)

    def subscription_names(self) -> set[tuple[str, str]]:
        # As the index: a subscription being deleted, or without a service, is not there.
        return {
            key
            for key, obj in self.subscriptions.items()
            if not obj.deleting and isinstance(obj.spec.get("service"), str)
        }

    def live_subscriptions(self, namespace: str, service: str) -> list[LiveSubscription]:
        return [
            LiveSubscription(name, decode.spec(SyncSubscriptionSpec, "SyncSubscription", ns, name, obj.spec), obj.uid)
            for (ns, name), obj in sorted(self.subscriptions.items())
            if ns == namespace and obj.spec.get("service") == service and not obj.deleting
        ]

    def live_publications(self, namespace: str, service: str) -> list[LivePublication]:
        return [
            LivePublication(name, decode.spec(SyncPublicationSpec, "SyncPublication", ns, name, obj.spec), obj.uid)
            for (ns, name), obj in sorted(self.publications.items())
            if ns == namespace and obj.spec.get("service") == service and not obj.deleting
        ]

    def deployment(self, namespace: str, name: str) -> Mapping[str, Any]:
        self._check("get", "Deployment", namespace, name)
        if (namespace, name) not in self.deployments:
            raise NotFound("Deployment", namespace, name)
        return copy.deepcopy(self.deployments[namespace, name])

    def apply_sidecar(
        self, namespace: str, deployment: str, container: Mapping[str, Any] | None, credentials: str | None = None
    ) -> None:
        self._check("patch", "Deployment", namespace, deployment)
        if self.conflicts:
            self.conflicts -= 1
            raise Conflict("Deployment", namespace, deployment, "the object has been modified")
        if (namespace, deployment) not in self.deployments:
            # An apply creates what is missing, and our partial body is no valid Deployment.
            raise Invalid("Deployment", namespace, deployment, "spec.selector: Required value")
        template = self.deployments[namespace, deployment]["spec"]["template"]
        spec = template["spec"]
        # Server-side apply drops what our field manager no longer sends: a regular sidecar container of an
        # older release goes in the same write that adds the native one.
        spec["containers"] = [c for c in spec["containers"] if c["name"] != sidecar_spec.CONTAINER_NAME]
        inits = [c for c in spec.get("initContainers", []) if c["name"] != sidecar_spec.CONTAINER_NAME]
        spec["initContainers"] = [*inits, dict(container)] if container is not None else inits
        if not spec["initContainers"]:
            del spec["initContainers"]
        annotations = template.setdefault("metadata", {}).setdefault("annotations", {})
        annotations.pop(sidecar_spec.CREDENTIALS_ANNOTATION, None)
        if container is not None and credentials is not None:
            annotations[sidecar_spec.CREDENTIALS_ANNOTATION] = credentials
        self.applied.append((namespace, deployment, dict(container) if container is not None else None))

    def post_events(self, about: ObjectRef, notes: Sequence[Note]) -> None:
        self.events.extend((about, note) for note in notes)

    def _check(self, verb: Verb, kind: str, namespace: str, name: str, *, api_server: bool = True) -> None:
        if api_server and self.unavailable:
            raise Unavailable(kind, namespace, name, "HTTP 503: fake API server is down")
        if (verb, kind) in self.forbidden:
            raise Forbidden(kind, namespace, name, action=_ACTIONS[verb])


_ACTIONS: dict[Verb, str] = {
    "get": "read",
    "patch": "patched",
    "create": "created",
    "update": "replaced",
    "delete": "deleted",
}
