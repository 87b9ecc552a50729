"""Reading a RabbitMQ stream from an offset, without consuming it: how ``rabbitsync trace`` reads records.

A stream is read by a consumer that says where to start (``x-stream-offset``: ``first``, a time, an
offset) and acknowledges only to get more credit; nothing is removed, and other readers see the same
messages. AMQP 0.9.1 has no "end of stream" signal, so the read stops once no message has come for
``idle_s`` (the broker sends what it has as fast as credit allows), or at ``limit_s`` in any case.
Messages are filtered by ``select`` as they arrive, so a long stream costs time, not memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pika

from rabbitsync.transport.endpoint import BrokerEndpoint, Timeouts
from rabbitsync.transport.session import connect

PREFETCH = 1000
"""Messages in flight from the broker; streams need a prefetch (credit) to deliver at all."""


@dataclass(frozen=True)
class StreamEntry:
    message_id: str | None
    body: bytes
    user_id: str | None
    """The publisher's broker user, as the broker verified it."""
    offset: int | None


def read_stream(
    endpoint: BrokerEndpoint,
    stream: str,
    *,
    start: str | int | datetime = "first",
    select: Callable[[StreamEntry], bool] = lambda _entry: True,
    timeouts: Timeouts | None = None,
    idle_s: float = 1.0,
    limit_s: float = 120.0,
    progress: Callable[[int, int], None] | None = None,
) -> list[StreamEntry]:
    """The entries of ``stream`` from ``start`` that ``select`` keeps. Raises ``BrokerError``
    (``NotFound`` when there is no such stream)."""
    kept: list[StreamEntry] = []
    seen = 0

    def on_message(channel: Any, method: Any, properties: pika.BasicProperties, body: bytes) -> None:
        nonlocal seen
        seen += 1
        offset = (properties.headers or {}).get("x-stream-offset")
        entry = StreamEntry(
            properties.message_id, body, properties.user_id, offset if isinstance(offset, int) else None
        )
        if select(entry):
            kept.append(entry)
        channel.basic_ack(method.delivery_tag)  # credit for the next ones; a stream removes nothing

    with connect(endpoint, name="rabbitsync-cli-stream", timeouts=timeouts or Timeouts()) as connection:
        channel = connection.channel()
        total = int(channel.queue_declare(stream, passive=True).method.message_count or 0)
        channel.basic_qos(prefetch_count=PREFETCH)
        channel.basic_consume(stream, on_message, arguments={"x-stream-offset": start})
        deadline = time.monotonic() + limit_s
        last, counted = time.monotonic(), 0
        while time.monotonic() < deadline and time.monotonic() - last < idle_s:
            connection.process_data_events(time_limit=0.1)
            if seen != counted:
                last, counted = time.monotonic(), seen
                if progress is not None:
                    progress(seen, max(total, seen))
    return kept
