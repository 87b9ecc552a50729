"""A blocking connection driven by its owner's thread: for consuming and peeking.

The sidecar's consume loop and the CLI's dead-letter commands read from queues through a
:class:`Session`; the operator's topology changes open their connection with :func:`connect`. Each
consumed queue gets a channel of its own: the broker closes a channel on a missing queue (404) and
cancels the consumers of a deleted one, and either must stop that queue only, not the other
subscriptions of the same service. ``get`` and the acks of what it returned use the session's first
channel. Header values pika cannot decode no longer kill the connection
(:mod:`rabbitsync.transport.decoding`). pika stays inside: messages come out as
:class:`IncomingMessage`, failures as :mod:`rabbitsync.transport.errors`, and every connection is
built by :func:`rabbitsync.transport.parameters.connection_parameters`.
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
from rabbitsync.transport import decoding
from rabbitsync.transport.endpoint import BrokerEndpoint, Timeouts
from rabbitsync.transport.errors import BrokerUnreachable
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
    exchange: str | None = None
    """The exchange it was routed through: ``""`` is the default exchange (straight to a queue by
    name: also how the broker dead-letters into a dead-letter queue, and how a retry came back from
    an older release's delay queue); a retry comes back through its cluster's retries exchange
    (:func:`rabbitsync.topology.naming.retries_exchange`); ``None`` when unknown."""
    channel: int = 0
    """The channel it came on; :meth:`Session.ack` needs it with the tag (0: the session's first)."""
    routing_key: str | None = None
    """The key it was published (or dead-lettered) with: for a snapshot, the type the broker allowed."""

    def copy_to(self, routing_key: str, headers: Mapping[str, Any], *, exchange: str = "") -> OutgoingMessage:
        """The same event with ``headers`` instead, published to ``exchange`` with ``routing_key``.

        By default through the default exchange, where the routing key is the queue's name.
        Mandatory, so a queue that no longer exists, or an exchange no queue is bound to, is a
        failure, not a silent loss.
        """
        return OutgoingMessage(
            exchange=exchange,
            routing_key=routing_key,
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
    decoding.install()
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
    """One connection, a channel per consumed queue. Not thread-safe: only :meth:`wake` may be called elsewhere."""

    def __init__(self, connection: pika.BlockingConnection, channel: BlockingChannel) -> None:
        self._connection = connection
        self._channel = channel
        self._consumers: dict[str, BlockingChannel] = {}
        self._cancelled: dict[str, str] = {}

    def cancelled_queues(self) -> dict[str, str]:
        """Queues whose consumer the broker cancelled (deleted, or its node gone), with the reason."""
        return dict(self._cancelled)

    def consume(self, queue: str, *, prefetch: int, deliver: Callable[[IncomingMessage], None]) -> None:
        """Deliver ``queue``'s messages to ``deliver`` from within :meth:`pump`, ``prefetch`` unacked at most.

        On a channel of its own: :class:`~rabbitsync.transport.errors.NotFound` for a missing queue
        closes that channel only.
        """

        def on_message(channel: Any, method: Any, properties: pika.BasicProperties, body: bytes) -> None:
            deliver(_incoming(method, properties, body, channel.channel_number))

        with translated():
            channel = self._connection.channel()
        self._consumers[queue] = channel
        self._cancelled.pop(queue, None)
        channel.add_on_cancel_callback(lambda frame: self._cancelled.setdefault(queue, str(frame)))
        try:
            with translated():
                channel.basic_qos(prefetch_count=prefetch)
                channel.basic_consume(queue, on_message, auto_ack=False)
        except BaseException:
            self.stop(queue)
            raise

    def stop(self, queue: str) -> None:
        """Stop consuming ``queue``: its channel closes, its unacked messages go back to the queue."""
        channel = self._consumers.pop(queue, None)
        self._cancelled.pop(queue, None)
        if channel is not None:
            with contextlib.suppress(*IO_ERRORS):
                if channel.is_open:
                    channel.close()

    def get(self, queue: str) -> IncomingMessage | None:
        """The next message of ``queue``, left unacknowledged; ``None`` when the queue is empty."""
        with translated():
            method, properties, body = self._channel.basic_get(queue, auto_ack=False)
        if method is None:
            return None
        return _incoming(method, properties, body, 0)

    def ack(self, tag: int, channel: int = 0, *, multiple: bool = False) -> None:
        """Acknowledge delivery ``tag`` of ``channel`` (:attr:`IncomingMessage.channel`), and with
        ``multiple`` every unacknowledged delivery of that channel before it too."""
        with translated():
            self._by_number(channel).basic_ack(tag, multiple=multiple)

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

    def _by_number(self, number: int) -> BlockingChannel:
        if number == 0:
            return self._channel
        for channel in self._consumers.values():
            if channel.channel_number == number:
                return channel
        # Never ack on another channel: the same tag there names another message.
        raise BrokerUnreachable(f"channel {number} is closed: its unacked deliveries went back to the queue")


def _incoming(method: Any, properties: pika.BasicProperties, body: bytes, channel: int) -> IncomingMessage:
    return IncomingMessage(
        tag=method.delivery_tag,
        body=body,
        headers=properties.headers or {},
        message_id=properties.message_id,
        type=properties.type,
        timestamp=properties.timestamp,
        content_type=properties.content_type,
        user_id=properties.user_id,
        exchange=method.exchange,
        channel=channel,
        routing_key=method.routing_key,
    )
