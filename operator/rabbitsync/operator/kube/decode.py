"""Raw API data into the operator's types, shared by the real port and the fake so both refuse alike.

Secret values arrive base64-encoded and specs as plain JSON; a value the models refuse becomes
``Invalid`` naming the object and the field, never a ``binascii`` or pydantic error.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from rabbitsync.operator.kube.errors import Invalid

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
