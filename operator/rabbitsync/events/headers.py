"""The AMQP headers rabbitsync writes on a delivery it reroutes (retry, dead letter): wire format.

The sidecar writes them, the dead-letter tools read them, a service in another language may too:
one definition, next to the envelope they travel with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ATTEMPT = "x-rabbitsync-attempt"
"""The 1-based attempt the delivery will make when it comes back from a delay queue."""
REASON = "x-rabbitsync-reason"
"""Why a dead letter was parked: ``failed``, ``poison`` or a trust refusal."""
EXCEPTION_TYPE = "x-rabbitsync-exception-type"
EXCEPTION_MESSAGE = "x-rabbitsync-exception-message"
ATTEMPTS = "x-rabbitsync-attempts"
"""Attempts made before the event was dead-lettered."""
QUEUE = "x-rabbitsync-queue"
"""The subscription queue the event failed in, where a replay sends it back."""
PUBLISHER = "x-rabbitsync-publisher"
"""The broker-verified ``user_id`` of the event's original publish, written by the sidecar when it
reroutes a delivery (retry, dead letter)."""

X_DEATH = "x-death"
"""The broker's own dead-lettering record: a list whose first entry is the latest death."""
COUNTERS = frozenset({"x-delivery-count", "x-acquired-count"})
"""Kept by the broker per message; a copy is a new message and must start without them."""
BROKER_HEADERS = COUNTERS | {
    X_DEATH,
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
}
"""The broker's bookkeeping of a message's path. A fresh publish (retry, replay) drops them: copied,
they would lie about the new message's path, and our own headers are the authority."""


def vouched_publisher(user_id: str | None, headers: Mapping[str, Any], reader: str | None) -> str | None:
    """The verified user who first published a message; ``None`` when nobody vouches for one.

    That is its ``user_id`` (the broker checks it against the connection's user), unless the message was
    published by ``reader`` itself: then it is a copy rabbitsync made (retry, dead letter, a copy put
    back by a listing), and :data:`PUBLISHER` says who published the original. Nobody else can publish
    as ``reader``, so a :data:`PUBLISHER` header on anyone else's message is never believed.
    """
    if user_id is None:
        return None
    claimed = headers.get(PUBLISHER)
    if reader is not None and user_id == reader and claimed is not None:
        return claimed.decode(errors="replace") if isinstance(claimed, bytes) else str(claimed)
    return user_id


def with_publisher(headers: Mapping[str, Any], publisher: str | None) -> dict[str, Any]:
    """``headers`` as a copy carries them: :data:`PUBLISHER` says ``publisher``, whatever it said before."""
    carried = {key: value for key, value in headers.items() if key != PUBLISHER}
    if publisher is not None:
        carried[PUBLISHER] = publisher
    return carried
