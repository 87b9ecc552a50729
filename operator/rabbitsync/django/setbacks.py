"""What becomes of an outbox row the broker would not take: pure decisions, tested without a database.

One row must never hold up the rows behind it. So a refused row is set back on its own, with a
capped exponential delay of its own (``next_attempt_at``), and after ``relay_max_attempts`` refusals it
is *parked*: kept, with the reason, out of the relay's way. A row too large for the broker is parked
at once, since no retry can shrink it. Two failures are deliberately not the row's:

- the broker being away (:class:`~rabbitsync.transport.BrokerUnreachable`) costs no attempt, or an
  outage would park the whole outbox;
- a returned (unroutable) row is never parked: nothing is wrong with it, the alternate exchange that
  should have kept it is missing, and it goes out again on its own schedule once it is back.
"""

from __future__ import annotations

from dataclasses import dataclass

from rabbitsync.backoff import capped_exponential
from rabbitsync.transport import BrokerError, Unroutable

FIRST_DELAY = 1.0
"""Seconds a row waits after its first refusal; doubled on each further one up to the cap."""
REASON_LENGTH = 1000
"""Characters of the broker's reason kept on the row: enough to read, bounded for the column."""


@dataclass(frozen=True)
class Setback:
    """The fate of one refused row: parked with ``reason``, or retried after ``delay`` seconds."""

    reason: str
    park: bool
    delay: float = 0.0


def too_large(size: int, limit: int) -> Setback | None:
    """The row's body is larger than the relay may send: parked, never tried."""
    if size <= limit:
        return None
    return Setback(f"too large: {size} bytes, RELAY_MAX_MESSAGE_BYTES is {limit}", park=True)


def after_refusal(attempts: int, error: BrokerError, *, max_attempts: int, max_delay: float) -> Setback:
    """The setback of a row the broker refused for the ``attempts``-th time (counting this one)."""
    reason = f"{error.reason}: {error}"[:REASON_LENGTH]
    if attempts >= max_attempts and not isinstance(error, Unroutable):
        return Setback(f"refused {attempts} times, last: {reason}"[:REASON_LENGTH], park=True)
    return Setback(reason, park=False, delay=capped_exponential(max(attempts - 1, 0), FIRST_DELAY, max_delay))
