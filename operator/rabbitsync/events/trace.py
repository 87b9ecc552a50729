"""Trace records: one small JSON line per thing that happened to an event, for ``rabbitsync trace``.

Relays write ``published`` when the broker confirmed an event; sidecars write what their handlers
made of it (``applied``, ``duplicate``, ``own``, ``retried``, ``dead-lettered``). They go to the
trace stream (:mod:`rabbitsync.topology.trace`) and the CLI reads them back; this module is the one
format both sides agree on. Pure: no I/O.

A record names the replica that wrote it (cluster, namespace, service, pod) and the queue it came
from, so a trace shows every replica an event reached. Decoding is lenient (unknown keys ignored,
missing ones ``None``): the CLI may be older or newer than the writers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any, Final

PUBLISHED: Final = "published"
APPLIED: Final = "applied"
DUPLICATE: Final = "duplicate"
"""Already in this replica's inbox: a redelivery or a replay, absorbed."""
OWN: Final = "own"
"""This replica's own event coming back to it: skipped."""
RETRIED: Final = "retried"
DEAD_LETTERED: Final = "dead-lettered"

_ERROR_LENGTH = 300
"""Longest error text kept: a record stays small whatever a handler raised."""


@dataclass(frozen=True)
class TraceRecord:
    kind: str
    event_id: str
    at: str
    """When it happened, ISO 8601 UTC, by the writer's clock."""
    cluster: str
    namespace: str
    service: str
    pod: str = ""
    type: str | None = None
    subject: str | None = None
    queue: str | None = None
    """The subscription queue it was consumed from (sidecar records)."""
    attempt: int | None = None
    """The attempt that failed (``retried``) or the attempts spent (``dead-lettered``)."""
    reason: str | None = None
    error: str | None = None
    source: str | None = None
    """The event's ``source``: the service that published it."""
    event_time: str | None = None
    """The event's ``time``: when it was written in its publisher's outbox."""
    writer: str | None = None
    """The broker user that appended the record (its AMQP ``user_id``, checked by the broker); set on
    reading, never trusted from the body."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def shorten(error: str | None) -> str | None:
    if error is None or len(error) <= _ERROR_LENGTH:
        return error
    return error[: _ERROR_LENGTH - 1] + "…"


def encode(record: TraceRecord) -> bytes:
    data = {k: v for k, v in asdict(record).items() if v not in (None, "") and k != "writer"}
    return json.dumps(data, separators=(",", ":")).encode()


_FIELDS = frozenset(f.name for f in fields(TraceRecord))


def decode(body: bytes, writer: str | None = None) -> TraceRecord | None:
    """The record in ``body``, or ``None`` if it is not one (a stray message in the stream)."""
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("kind", "event_id", "at")):
        return None
    known = {k: v for k, v in data.items() if k in _FIELDS and k != "writer"}
    known.setdefault("cluster", "")
    known.setdefault("namespace", "")
    known.setdefault("service", "")
    try:
        return TraceRecord(**known, writer=writer)
    except TypeError:
        return None
