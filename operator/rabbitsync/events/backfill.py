"""The wire format of a backfill: the request a publisher serves, and the end marker of its snapshot.

A backfill asks one publisher to send its current state, as the events its live writes produce, to
one subscription's queue. Snapshot events are ordinary CloudEvents (the same types, data and LWW
versions as live ones) with two things added: their ids are ``<run>-<n>`` (see :func:`snapshot_id`)
and the :data:`BACKFILL` header names the run. The last message of a run is a :class:`BackfillEnd`,
marked by :data:`BACKFILL_END`, saying how many events the run sent.

Why ids are derived from the run: the subscriber's inbox records every id it applied, in the
handler's transaction, so "how many of this run's events are applied" is a count of inbox rows
starting with the run's prefix, exact and durable across sidecar restarts, with no table of its own.
A run is one attempt of a request: a publisher that restarts a request starts a new run, because its
``n``-th row may then be a different row, and reusing the id would make the inbox skip it.
"""

from __future__ import annotations

import uuid
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rabbitsync.conventions import EventType
from rabbitsync.events.errors import InvalidEvent

BACKFILL = "x-rabbitsync-backfill"
"""Header on every snapshot event and on the end marker: the run it belongs to."""
BACKFILL_END = "x-rabbitsync-backfill-end"
"""Header (any value) that marks the end of a run; its body is a :class:`BackfillEnd`."""

END_TYPE = "application/vnd.rabbitsync.backfill-end+json"
REQUEST_TYPE = "application/vnd.rabbitsync.backfill-request+json"
REPORT_TYPE = "application/vnd.rabbitsync.backfill-report+json"
"""Content types of the control messages, so that broker tools show what they are."""


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_M = TypeVar("_M", bound=_Wire)


class BackfillRequest(_Wire):
    """Send the current state of ``types`` in ``namespace`` to ``queue``."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    namespace: str = Field(min_length=1, max_length=63)
    queue: str = Field(min_length=1, max_length=255)
    types: tuple[EventType, ...] = Field(min_length=1)
    subscription: str = Field(default="", max_length=253, description="who asked, for logs")


class BackfillEnd(_Wire):
    """The last message of run ``run`` of request ``request``: ``count`` events were sent before it."""

    request: str
    run: str
    source: str = Field(description="the serving service, as a CloudEvent source")
    types: tuple[EventType, ...]
    count: int = Field(ge=0)


class BackfillReport(_Wire):
    """The subscriber's word on run ``run`` of request ``request``: ``applied`` of its ``sent`` events.

    Sent by the subscribing sidecar to its operator (:func:`rabbitsync.topology.naming.backfill_status_queue`)
    each time it meets the run's end marker; ``complete`` only once every event of the run is applied.
    """

    request: str
    run: str
    sent: int = Field(ge=0)
    applied: int = Field(ge=0)
    complete: bool


def new_run(request: BackfillRequest) -> str:
    """A fresh run id for one attempt at serving ``request``."""
    return f"{request.id}.{uuid.uuid4().hex[:12]}"


def snapshot_id(run: str, n: int) -> str:
    """The id of the ``n``-th event (from 1) of ``run``."""
    return f"{run}-{n}"


def run_prefix(run: str) -> str:
    """What every event id of ``run`` starts with, and no other run's."""
    return f"{run}-"


def decode_request(body: bytes) -> BackfillRequest:
    return _decode(BackfillRequest, body)


def decode_end(body: bytes) -> BackfillEnd:
    return _decode(BackfillEnd, body)


def decode_report(body: bytes) -> BackfillReport:
    return _decode(BackfillReport, body)


def encode(message: BackfillRequest | BackfillEnd | BackfillReport) -> bytes:
    return message.model_dump_json().encode()


def _decode(model: type[_M], body: bytes) -> _M:
    try:
        return model.model_validate_json(body)
    except (ValidationError, ValueError) as e:
        raise InvalidEvent(f"not a {model.__name__}: {e}") from e
