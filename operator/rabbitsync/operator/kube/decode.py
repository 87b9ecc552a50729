"""Raw API data into the operator's types, shared by the real port and the fake so both refuse alike.

Secret values arrive base64-encoded and specs as plain JSON; a value the models refuse becomes
``Invalid`` naming the object and the field, never a ``binascii`` or pydantic error.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from rabbitsync.api.syncbroker import SyncBrokerSpec
from rabbitsync.operator.kube.errors import Invalid, NotFound

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
    if stored is None:
        raise NotFound("SyncBroker", namespace, name)
    if stored.deleting:
        # Its finalizer keeps it readable a moment longer; it must not be used for anything new.
        raise NotFound("SyncBroker", namespace, name, "it is being deleted")
    return spec(SyncBrokerSpec, "SyncBroker", namespace, name, stored.spec)
