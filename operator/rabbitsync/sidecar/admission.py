"""Deliveries refused before their body is parsed: too large, or headers pika could not decode.

Both go to the dead-letter queue at once with the reason, like poison: no retry changes a body's
size, and a header the transport had to replace with text (:mod:`rabbitsync.transport.decoding`)
means the publisher sent a value nobody here can read back. Checking the size first keeps a 50 MB
body from ever reaching the JSON parser.
"""

from __future__ import annotations

from rabbitsync.transport import IncomingMessage, undecodable_headers

TOO_LARGE = "too-large"
UNDECODABLE_HEADER = "undecodable-header"


class Refused(Exception):
    """The delivery goes to the dead-letter queue unread; ``reason`` is one of the constants above."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def check(message: IncomingMessage, *, max_body_bytes: int) -> None:
    """Raise :class:`Refused` unless ``message`` may be parsed as an event."""
    if len(message.body) > max_body_bytes:
        raise Refused(TOO_LARGE, f"body of {len(message.body)} bytes, above the limit of {max_body_bytes}")
    unreadable = undecodable_headers(message.headers)
    if unreadable:
        raise Refused(UNDECODABLE_HEADER, f"header values the AMQP client cannot decode: {', '.join(unreadable)}")
