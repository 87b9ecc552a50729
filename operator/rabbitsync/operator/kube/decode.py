"""Raw API data into the operator's types and back, shared by the real port and the fake so both act alike.

Secret values arrive base64-encoded and specs as plain JSON; a value the models refuse becomes
``Invalid`` naming the object and the field, never a ``binascii`` or pydantic error.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from rabbitsync.api.clustersyncbroker import ClusterSyncBrokerSpec
from rabbitsync.api.syncbroker import SyncBrokerSpec
from rabbitsync.operator.kube.errors import Invalid, NotFound
from rabbitsync.operator.kube.port import SecretWrite

_Model = TypeVar("_Model", bound=BaseModel)


def secret_data(namespace: str, name: str, data: Mapping[str, str | bytes] | None) -> dict[str, bytes]:
    """A Secret's ``data`` as bytes, key by key."""
    decoded: dict[str, bytes] = {}
    for key, value in (data or {}).items():
        try:
            decoded[key] = base64.b64decode(value, validate=True)
        except ValueError as e:  # binascii.Error, or non-ASCII text
            raise Invalid("Secret", namespace, name, f"key {key!r} is not valid base64") from e
    return decoded


def secret_body(namespace: str, secret: SecretWrite) -> dict[str, Any]:
    """The Secret object to create or replace (``resourceVersion`` set for a replace)."""
    metadata: dict[str, Any] = {
        "name": secret.name,
        "namespace": namespace,
        "labels": dict(secret.labels),
        "annotations": dict(secret.annotations),
        "ownerReferences": [
            {"apiVersion": o.api_version, "kind": o.kind, "name": o.name, "uid": o.uid} for o in secret.owners if o.uid
        ],
    }
    if secret.resource_version is not None:
        metadata["resourceVersion"] = secret.resource_version
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata,
        "data": {k: base64.b64encode(v).decode() for k, v in secret.data.items()},
    }


def spec(model: type[_Model], kind: str, namespace: str, name: str, raw: Mapping[str, Any]) -> _Model:
    """``raw`` validated as ``model``; the API server's schema should already have refused what fails here."""
    try:
        return model.model_validate(dict(raw))
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}" for err in e.errors())
        raise Invalid(kind, namespace, name, f"spec: {problems}") from e


class StoredBroker(Protocol):
    """A SyncBroker as a store keeps it (kopf's index, the fake): its raw spec and whether it is going."""

    @property
    def spec(self) -> Mapping[str, Any]: ...

    @property
    def deleting(self) -> bool: ...


def sync_broker(namespace: str, name: str, stored: StoredBroker | None) -> SyncBrokerSpec:
    return _broker(SyncBrokerSpec, "SyncBroker", namespace, name, stored)


def cluster_sync_broker(name: str, stored: StoredBroker | None) -> ClusterSyncBrokerSpec:
    return _broker(ClusterSyncBrokerSpec, "ClusterSyncBroker", "", name, stored)


def _broker(model: type[_Model], kind: str, namespace: str, name: str, stored: StoredBroker | None) -> _Model:
    if stored is None:
        raise NotFound(kind, namespace, name)
    if stored.deleting:
        # Its finalizer keeps it readable a moment longer; it must not be used for anything new.
        raise NotFound(kind, namespace, name, "it is being deleted")
    return spec(model, kind, namespace, name, stored.spec)
