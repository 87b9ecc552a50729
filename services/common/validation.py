"""Checking a JSON request body against a few declared fields; pure Python, no Django.

Small on purpose (no DRF in the dependencies): each field says its type and bounds, and every
problem is reported at once, keyed by field, so a client fixes its request in one round trip.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class Invalid(Exception):
    """The body does not match the fields; ``errors`` maps each field to what is wrong with it."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


@dataclass(frozen=True)
class Field:
    kind: type | str
    """``str``, ``int``, ``bool``, ``list``, ``"uuid"`` (a string holding a UUID, returned as UUID) or
    ``"email"`` (a string that is empty or looks like an address)."""
    required: bool = False
    default: Any = None
    max_length: int | None = None
    min_value: int | None = None
    max_value: int | None = None
    blank: bool = True
    """For strings: is the empty (or all-whitespace) string allowed."""

    def clean(self, value: Any) -> Any:
        if self.kind == "uuid":
            return _uuid(value)
        if self.kind == "email":
            return self._bounded(_email(value))
        # bool is an int in Python; neither may stand in for the other in an API.
        if not isinstance(value, self.kind) or (self.kind is int and isinstance(value, bool)):
            raise ValueError(f"must be {_NAMES.get(self.kind, str(self.kind))}")
        if isinstance(value, str):
            value = value.strip()
            if not value and not self.blank:
                raise ValueError("must not be blank")
            return self._bounded(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if self.min_value is not None and value < self.min_value:
                raise ValueError(f"must be at least {self.min_value}")
            if self.max_value is not None and value > self.max_value:
                raise ValueError(f"must be at most {self.max_value}")
        return value

    def _bounded(self, text: str) -> str:
        # JSON can carry both; the databases cannot store them (PostgreSQL refuses NUL, SQLite and
        # every UTF-8 encoder refuse a lone surrogate), which would surface as a 500.
        if "\x00" in text or not _encodable(text):
            raise ValueError("must be text without NUL characters or unpaired surrogates")
        if self.max_length is not None and len(text) > self.max_length:
            raise ValueError(f"must be at most {self.max_length} characters")
        return text


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _uuid(value: Any) -> uuid.UUID:
    if not isinstance(value, str):
        raise ValueError("must be a UUID string")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValueError("must be a UUID string") from None


def _email(value: Any) -> str:
    if not isinstance(value, str) or (value.strip() and not _EMAIL.match(value.strip())):
        raise ValueError("must be an email address")
    return value.strip()


# Deliberately loose: one @, something on each side, a dot in the domain. Delivery proves the rest.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "an object"}


def validate(body: Any, fields: Mapping[str, Field], *, partial: bool = False) -> dict[str, Any]:
    """The cleaned values of ``body``; raises :class:`Invalid`.

    ``partial`` (PATCH): only the fields present are checked and returned, none is required.
    Unknown fields are refused rather than ignored, so a typo does not silently do nothing.
    """
    if not isinstance(body, dict):
        raise Invalid({"body": "must be a JSON object"})
    errors: dict[str, str] = {name: "unknown field" for name in body if name not in fields}
    cleaned: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in body:
            if partial:
                continue
            if field.required:
                errors[name] = "this field is required"
            else:
                cleaned[name] = field.default
            continue
        try:
            cleaned[name] = field.clean(body[name])
        except ValueError as e:
            errors[name] = str(e)
    if partial and not body:
        errors["body"] = "no field to change"
    if errors:
        raise Invalid(errors)
    return cleaned
