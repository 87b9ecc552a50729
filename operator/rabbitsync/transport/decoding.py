"""Header values pika cannot decode become readable text instead of killing the connection.

pika decodes a message's header table while it reads the frame: a double (``d``) or float (``f``)
of NaN or ±Inf fails its ``int()`` conversion, and a timestamp (``T``) out of ``datetime``'s range
fails too. The exception escapes pika's frame reader, which aborts the whole connection; the
message goes back to the queue, comes first again on the next connection, and the consumer loops
forever without ever seeing it. Any user allowed to publish can do this to any consumer.

:func:`install` wraps pika's value decoder so that such a value decodes as an
:class:`UndecodableValue` (text describing the raw value) and the frame goes on. The consumer sees
the message and dead-letters it (:func:`undecodable_headers`); because the marker is a ``str``,
the copy it publishes carries it as an ordinary string header. Only these fixed-size kinds are
recovered: anything else pika cannot read still aborts the connection as before, since its length
is unknown and nothing after it could be trusted.
"""

from __future__ import annotations

import math
import struct
import threading
from collections.abc import Callable, Mapping
from typing import Any

import pika.data

_FIXED = {b"d": (">d", 8), b"f": (">f", 4), b"T": (">Q", 8)}
"""Kind byte -> (struct format, size) of the values pika may fail to convert."""
_KIND_NAMES = {b"d": "double", b"f": "float", b"T": "timestamp"}

_installed = False
_lock = threading.Lock()


class UndecodableValue(str):
    """A header value pika could not convert, as text (e.g. ``undecodable double: nan``)."""


def install() -> None:
    """Make pika's table decoder tolerant (idempotent, process-wide: every connection benefits)."""
    global _installed
    with _lock:
        if _installed:
            return
        pika.data.decode_value = _tolerant(pika.data.decode_value)
        _installed = True


def _tolerant(decode: Callable[[bytes, int], tuple[Any, int]]) -> Callable[[bytes, int], tuple[Any, int]]:
    def decode_value(encoded: bytes, offset: int) -> tuple[Any, int]:
        try:
            return decode(encoded, offset)
        except (ValueError, OverflowError, OSError):
            kind = bytes(encoded[offset : offset + 1])
            if kind not in _FIXED:
                raise
            fmt, size = _FIXED[kind]
            raw = struct.unpack_from(fmt, encoded, offset + 1)[0]
            return UndecodableValue(f"undecodable {_KIND_NAMES[kind]}: {_describe(raw)}"), offset + 1 + size

    return decode_value


def _describe(raw: float | int) -> str:
    if isinstance(raw, float) and not math.isfinite(raw):
        return str(raw)
    return repr(raw)


def undecodable_headers(headers: Mapping[str, Any]) -> list[str]:
    """The names (dotted for nested tables) of the header values that could not be decoded."""
    found: list[str] = []
    for key, value in headers.items():
        found += _undecodable(str(key), value)
    return found


def _undecodable(name: str, value: object) -> list[str]:
    if isinstance(value, UndecodableValue):
        return [name]
    if isinstance(value, Mapping):
        return [n for k, v in value.items() for n in _undecodable(f"{name}.{k}", v)]
    if isinstance(value, list):
        return [n for i, v in enumerate(value) for n in _undecodable(f"{name}[{i}]", v)]
    return []
