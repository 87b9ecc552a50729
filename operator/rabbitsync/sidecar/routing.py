"""Where a delivery goes when it cannot be applied: pure decisions, unit-tested without a broker.

A failed attempt is republished, with the next attempt number in a header, to the delay queue of
that attempt, whose TTL is the backoff. Delay queues are shared by the cluster's subscriptions
(:mod:`rabbitsync.topology.delays`): the copy goes to the step's delay exchange with the main queue's
name as its routing key, and on expiry the broker dead-letters it through the cluster's retries
exchange, which routes it back to that queue by that key. A contract of an older release names the
subscription's own delay queues instead, reached by name through the default exchange
(:meth:`~rabbitsync.topology.sidecar_contract.ConsumerSpec.retry_target` tells which).

After ``max_attempts``, or at once for poison (a message no retry can fix) and for an event the
sidecar does not trust (:mod:`rabbitsync.sidecar.trust`), it goes to the dead-letter queue with the
reason in headers, where it can be listed and replayed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rabbitsync.events.headers import (
    ATTEMPT,
    ATTEMPTS,
    BROKER_HEADERS,
    EXCEPTION_MESSAGE,
    EXCEPTION_TYPE,
    QUEUE,
    REASON,
)
from rabbitsync.topology.sidecar_contract import ConsumerSpec

FAILED = "failed"
POISON = "poison"

_MAX_MESSAGE = 1000


@dataclass(frozen=True)
class Retry:
    queue: str
    """The delay queue it waits in: what logs and trace records name."""
    exchange: str
    """Where the copy is published, with :attr:`routing_key` (:meth:`ConsumerSpec.retry_target`)."""
    routing_key: str
    headers: dict[str, Any]
    attempt: int
    """The attempt the message will make when it comes back."""
    error: str = field(default="", compare=False)
    """Why the attempt failed, for the log and the trace (the copy does not carry it)."""


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    headers: dict[str, Any]
    reason: str


@dataclass(frozen=True)
class Discard:
    """Dead-lettering is off for the subscription: log and drop."""

    reason: str


Action = Retry | DeadLetter | Discard


def attempt_of(headers: Mapping[str, Any] | None) -> int:
    """The 1-based attempt a delivery is making; garbage in the header counts as a first attempt."""
    value = (headers or {}).get(ATTEMPT)
    try:
        attempt = int(value) if value is not None else 1
    except (TypeError, ValueError):
        return 1
    return max(attempt, 1)


def after_failure(spec: ConsumerSpec, headers: Mapping[str, Any] | None, error: BaseException) -> Action:
    attempt = attempt_of(headers)
    if attempt < spec.max_attempts:
        exchange, routing_key = spec.retry_target(attempt)
        return Retry(
            queue=spec.retry_queue(attempt),
            exchange=exchange,
            routing_key=routing_key,
            headers={**_carried(headers), ATTEMPT: attempt + 1},
            attempt=attempt + 1,
            error=": ".join(p for p in describe(error) if p),
        )
    return _dead_letter(spec, headers, FAILED, error, attempt)


def poison(
    spec: ConsumerSpec, headers: Mapping[str, Any] | None, error: BaseException, *, reason: str = POISON
) -> Action:
    """Straight to the dead-letter queue: no retry can help (``reason`` says why, ``poison`` by default)."""
    return _dead_letter(spec, headers, reason, error, attempt_of(headers))


def describe(error: BaseException) -> tuple[str, str]:
    kind = type(error)
    return f"{kind.__module__}.{kind.__qualname__}", str(error)[:_MAX_MESSAGE]


def _dead_letter(
    spec: ConsumerSpec, headers: Mapping[str, Any] | None, reason: str, error: BaseException, attempt: int
) -> Action:
    if not spec.dead_letter:
        return Discard(reason=reason)
    exception_type, message = describe(error)
    return DeadLetter(
        queue=spec.dead_letter_queue,
        reason=reason,
        headers={
            **_carried(headers),
            REASON: reason,
            EXCEPTION_TYPE: exception_type,
            EXCEPTION_MESSAGE: message,
            ATTEMPTS: attempt,
            QUEUE: spec.queue,
        },
    )


def _carried(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (headers or {}).items() if k not in BROKER_HEADERS}
