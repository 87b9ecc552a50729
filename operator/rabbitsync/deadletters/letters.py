"""What a dead letter says about itself, and the headers of the copies made of it: pure, no broker.

A dead letter reaches ``<queue>.dlq`` one of two ways. The sidecar parks an event it could not apply
with the reason in ``x-rabbitsync-*`` headers (:mod:`rabbitsync.events.headers`). The broker dead-letters on its own
(a consumer's reject, a delivery limit, a length limit, an expired TTL) and only adds ``x-death``, a
list whose first entry is the latest death and names the queue it left. Both are described the same
way here, so a person sees one kind of entry and replay finds where to send either.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from rabbitsync.events.headers import (
    ATTEMPT,
    ATTEMPTS,
    BROKER_HEADERS,
    COUNTERS,
    EXCEPTION_MESSAGE,
    EXCEPTION_TYPE,
    QUEUE,
    REASON,
    X_DEATH,
    with_publisher,
)
from rabbitsync.transport import IncomingMessage

FAILURE_HEADERS = frozenset({REASON, EXCEPTION_TYPE, EXCEPTION_MESSAGE, ATTEMPTS, QUEUE})
DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class DeadLetter:
    """One parked event as ``rabbitsync dlq list`` shows it."""

    message_id: str | None
    type: str | None
    subject: str | None
    time: str | None
    """When the event happened (its CloudEvents ``time``, else the AMQP timestamp), RFC 3339."""
    reason: str | None
    attempts: int | None
    exception_type: str | None
    exception_message: str | None
    queue: str | None
    """The subscription queue the event failed in: where a replay sends it back."""
    dead_lettered_by: str
    """``sidecar`` (a handler failed or refused it) or ``broker`` (x-death only)."""
    dead_lettered_at: str | None
    """The broker's time of the death (x-death); the sidecar records none."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def describe(message: IncomingMessage, dead_letter_queue: str) -> DeadLetter:
    headers = message.headers
    death = latest_death(headers)
    body = _body(message.body)
    by_sidecar = EXCEPTION_TYPE in headers
    return DeadLetter(
        message_id=message.message_id or _text(body.get("id")),
        type=message.type or _text(body.get("type")),
        subject=_text(body.get("subject")),
        time=_text(body.get("time")) or _timestamp(message.timestamp),
        reason=text(headers.get(REASON)) or (text(death.get("reason")) if death else None),
        attempts=_int(headers.get(ATTEMPTS)) or _int(headers.get(ATTEMPT)),
        exception_type=text(headers.get(EXCEPTION_TYPE)),
        exception_message=text(headers.get(EXCEPTION_MESSAGE)),
        queue=origin_queue(headers, dead_letter_queue),
        dead_lettered_by="sidecar" if by_sidecar else "broker",
        dead_lettered_at=_time(death.get("time")) if death else None,
    )


def latest_death(headers: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The newest ``x-death`` entry: the broker keeps the list newest first."""
    deaths = headers.get(X_DEATH)
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], Mapping):
        return deaths[0]
    return None


def origin_queue(headers: Mapping[str, Any], dead_letter_queue: str) -> str | None:
    """Where the event failed: the sidecar's header, else the broker's latest death, else ``Q`` of ``Q.dlq``.

    The last fallback holds by construction: only the subscription's queue dead-letters into its DLQ.
    """
    death = latest_death(headers)
    found = text(headers.get(QUEUE)) or (text(death.get("queue")) if death else None)
    found = found or text(headers.get("x-last-death-queue")) or text(headers.get("x-first-death-queue"))
    if found:
        return found
    return dead_letter_queue.removesuffix(DLQ_SUFFIX) if dead_letter_queue.endswith(DLQ_SUFFIX) else None


def kept_headers(headers: Mapping[str, Any], letter: DeadLetter, publisher: str | None) -> dict[str, Any]:
    """Headers of the copy that takes a dead letter's place in its DLQ; ``publisher`` is the original's
    vouched publisher (:func:`~rabbitsync.events.headers.vouched_publisher`), which the copy carries.

    The broker's counters go (the copy is a fresh message). Where the event failed and why are
    written into our own headers too, because brokers differ in whether they keep an ``x-death``
    a client published: the copy must still say where a replay sends it.
    """
    kept = {k: v for k, v in with_publisher(headers, publisher).items() if k not in COUNTERS}
    if letter.queue:
        kept.setdefault(QUEUE, letter.queue)
    if letter.reason:
        kept.setdefault(REASON, letter.reason)
    return kept


def replay_headers(headers: Mapping[str, Any], publisher: str | None) -> dict[str, Any]:
    """Headers of the event sent back to its queue: a first attempt again, no failure, no death record,
    and ``publisher`` as the one the sidecar will hold the event to (the copy's ``user_id`` is ours)."""
    fresh = {k: v for k, v in with_publisher(headers, publisher).items() if k not in FAILURE_HEADERS | BROKER_HEADERS}
    fresh[ATTEMPT] = 1
    return fresh


def text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def plain(value: object) -> Any:
    """A header value as JSON can carry it (bytes as text, timestamps as RFC 3339)."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, datetime):
        return _time(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _body(raw: bytes) -> dict[str, Any]:
    # Poison is often not a valid event: read what is there, never refuse to describe it.
    try:
        found = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: object) -> int | None:
    try:
        return int(value) if value is not None else None  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _timestamp(seconds: int | None) -> str | None:
    return _time(datetime.fromtimestamp(seconds, UTC)) if seconds else None


def _time(value: object) -> str | None:
    if not isinstance(value, datetime):
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
