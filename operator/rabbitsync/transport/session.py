"""A blocking connection with one channel, driven by its owner's thread: for consuming and peeking.

The sidecar's consume loop and the CLI's dead-letter commands read from queues through a
:class:`Session`; the operator's topology changes open their connection with :func:`connect`. pika
stays inside: messages come out as :class:`IncomingMessage`, failures as
:mod:`rabbitsync.transport.errors`, and every connection is built by
:func:`rabbitsync.transport.parameters.connection_parameters`.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from rabbitsync.events import CONTENT_TYPE, MessageProperties
from rabbitsync.transport.endpoint import BrokerEndpoint, Timeouts
from rabbitsync.transport.parameters import connection_parameters
from rabbitsync.transport.publisher import OutgoingMessage
from rabbitsync.transport.translation import IO_ERRORS, translated

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IncomingMessage:
    """A message fetched or delivered from a queue, not yet acknowledged."""

    tag: int
    """The delivery tag: what :meth:`Session.ack` takes; valid on the session that received it."""
    body: bytes
    headers: Mapping[str, Any]
    message_id: str | None = None
    type: str | None = None
    timestamp: int | None = None
    content_type: str | None = None
    user_id: str | None = None
    """Who published it, as the broker verified (absent if the publisher did not say)."""
    routing_key: str | None = None
    """The key it was published (or dead-lettered) with: for a snapshot, the type the broker allowed."""

    def copy_to(self, queue: str, headers: Mapping[str, Any]) -> OutgoingMessage:
        """The same event, sent to ``queue`` through the default exchange with ``headers`` instead.

        Mandatory, so a queue that no longer exists is a failure, not a silent loss.
        """
        return OutgoingMessage(
            exchange="",
            routing_key=queue,
            body=self.body,
            properties=MessageProperties(
                # mandatory returns are matched on message_id, so a copy always has one
                message_id=self.message_id or f"rabbitsync-{uuid.uuid4().hex}",
                type=self.type or "",
                timestamp=self.timestamp or int(time.time()),
                content_type=self.content_type or CONTENT_TYPE,
            ),
            headers=headers,
            mandatory=True,
        )


@contextmanager
def connect(endpoint: BrokerEndpoint, *, name: str, timeouts: Timeouts) -> Iterator[pika.BlockingConnection]:
    """A blocking connection for the ``with`` block; pika errors in it come out translated.

    The connection is closed on the way out, best effort: the broker may have dropped it already.
    """
    with translated():
        connection = pika.BlockingConnection(connection_parameters(endpoint, name=name, timeouts=timeouts))
    try:
        with translated():
            yield connection
    finally:
        with contextlib.suppress(*IO_ERRORS):
            if connection.is_open:
                connection.close()


@contextmanager
def open_session(endpoint: BrokerEndpoint, *, name: str, timeouts: Timeouts) -> Iterator[Session]:
    """A :class:`Session` for the ``with`` block. Closing it hands unacknowledged messages back."""
    with connect(endpoint, name=name, timeouts=timeouts) as connection:
        yield Session(connection, connection.channel())


class Session:
    """One connection and one channel. Not thread-safe: only :meth:`wake` may be called elsewhere."""

    def __init__(self, connection: pika.BlockingConnection, channel: BlockingChannel) -> None:
        self._connection = connection
        self._channel = channel
        self._cancelled: list[str] = []
        channel.add_on_cancel_callback(lambda frame: self._cancelled.append(str(frame)))

    @property
    def cancelled(self) -> str | None:
        """Why the broker cancelled one of our consumers (its queue was deleted), if it did."""
        return self._cancelled[0] if self._cancelled else None

    def consume(self, queue: str, *, prefetch: int, deliver: Callable[[IncomingMessage], None]) -> None:
        """Deliver ``queue``'s messages to ``deliver`` from within :meth:`pump`, ``prefetch`` unacked at most."""

        def on_message(_channel: Any, method: Any, properties: pika.BasicProperties, body: bytes) -> None:
            deliver(_incoming(method.delivery_tag, properties, body, method.routing_key))

        with translated():
            # basic_qos without global applies to the consumers created after it on this channel.
            self._channel.basic_qos(prefetch_count=prefetch)
            self._channel.basic_consume(queue, on_message, auto_ack=False)

    def get(self, queue: str) -> IncomingMessage | None:
        """The next message of ``queue``, left unacknowledged; ``None`` when the queue is empty."""
        with translated():
            method, properties, body = self._channel.basic_get(queue, auto_ack=False)
        if method is None:
            return None
        return _incoming(method.delivery_tag, properties, body, method.routing_key)

    def ack(self, tag: int) -> None:
        with translated():
            self._channel.basic_ack(tag)

    def pump(self, seconds: float) -> None:
        """Serve the connection (heartbeats, deliveries, wake-ups) for up to ``seconds``."""
        with translated():
            self._connection.process_data_events(time_limit=seconds)

    def wake(self) -> None:
        """From any thread: make a running :meth:`pump` return now."""
        try:
            self._connection.add_callback_threadsafe(lambda: None)
        except Exception:  # connection already closed: its owner notices on its own
            log.debug("could not wake the I/O thread", exc_info=True)


def _incoming(
    tag: int, properties: pika.BasicProperties, body: bytes, routing_key: str | None = None
) -> IncomingMessage:
    return IncomingMessage(
        tag=tag,
        body=body,
        headers=properties.headers or {},
        message_id=properties.message_id,
        type=properties.type,
        timestamp=properties.timestamp,
        content_type=properties.content_type,
        user_id=properties.user_id,
        routing_key=routing_key,
    )
