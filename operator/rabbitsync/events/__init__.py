"""The event envelope on the wire: CloudEvents 1.0 in structured JSON mode.

Pure data and codecs, no I/O: the Django library, the sidecar and the tests all speak these types,
so nothing below depends on pika or Django.
"""

from rabbitsync.events.clock import VersionClock, default_clock
from rabbitsync.events.codec import CONTENT_TYPE, MessageProperties, decode, encode, message_properties
from rabbitsync.events.envelope import CloudEvent, ExtensionValue, Origin, new_event
from rabbitsync.events.errors import EventError, InvalidEvent
from rabbitsync.events.ordering import wins

__all__ = [
    "CONTENT_TYPE",
    "CloudEvent",
    "EventError",
    "ExtensionValue",
    "InvalidEvent",
    "MessageProperties",
    "Origin",
    "VersionClock",
    "decode",
    "default_clock",
    "encode",
    "message_properties",
    "new_event",
    "wins",
]
