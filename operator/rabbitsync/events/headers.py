"""The AMQP headers rabbitsync writes on a delivery it reroutes (retry, dead letter): wire format.

The sidecar writes them, the dead-letter tools read them, a service in another language may too:
one definition, next to the envelope they travel with.
"""

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
