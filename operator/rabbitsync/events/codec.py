"""Bytes and AMQP properties for an event, and back.

The AMQP properties only mirror the envelope (``message_id`` = id, ``type`` = type, ``timestamp`` =
time) so broker tools can show them; the body is the single source of truth when decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from rabbitsync.events.envelope import CloudEvent
from rabbitsync.events.errors import InvalidEvent

CONTENT_TYPE = "application/cloudevents+json"
PERSISTENT = 2


@dataclass(frozen=True)
class MessageProperties:
    """The AMQP basic properties of an event, independent of any client library."""

    message_id: str
    type: str
    timestamp: int
    content_type: str = CONTENT_TYPE
    delivery_mode: int = PERSISTENT


def encode(event: CloudEvent) -> bytes:
    return event.model_dump_json(exclude_none=True).encode()


def decode(body: bytes) -> CloudEvent:
    """Parse a structured-mode CloudEvent; anything else raises :class:`InvalidEvent`."""
    try:
        return CloudEvent.model_validate_json(body)
    except ValidationError as e:
        raise InvalidEvent(_summary(e)) from e
    except (UnicodeDecodeError, ValueError, TypeError) as e:
        raise InvalidEvent(f"undecodable body: {e}") from e


def message_properties(event: CloudEvent) -> MessageProperties:
    return MessageProperties(message_id=event.id, type=event.type, timestamp=int(event.time.timestamp()))


def _summary(error: ValidationError) -> str:
    # A short, header-friendly reason: the first few problems with their locations.
    parts = []
    for item in error.errors()[:3]:
        where = ".".join(str(p) for p in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)
