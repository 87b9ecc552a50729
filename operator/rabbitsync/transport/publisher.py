"""A publisher with pipelined confirms that keeps itself connected: the only place pika publishes.

Why a ``SelectConnection`` in its own thread: ``BlockingChannel.confirm_delivery`` turns every
``basic_publish`` into a round trip, which caps a relay at one event per RTT. The asynchronous
connection lets us send a whole batch, then collect ``Basic.Ack`` frames (often ``multiple``) as
they come. Callers stay synchronous: ``submit`` hands the batch to the I/O thread and returns a
handle; ``publish`` waits on it. The I/O thread also answers heartbeats, whatever the callers do.

A separate connection from the consumer's is deliberate: RabbitMQ blocks publishing connections
under memory alarms, and that must not stall acks on the consuming one.

Every message goes out with the AMQP ``user_id`` property set to the user this connection logged in
as. RabbitMQ refuses a publish whose ``user_id`` differs from the authenticated user, so receivers can
trust it to name the publisher; setting it here, once, means no caller (relay, sidecar, CLI) can
forget it or claim another name.

pika's exceptions stay inside this module; callers see :mod:`rabbitsync.transport.errors`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import pika
from pika.spec import Basic

from rabbitsync.backoff import Backoff
from rabbitsync.events import MessageProperties
from rabbitsync.transport.endpoint import BrokerEndpoint, Timeouts
from rabbitsync.transport.errors import BrokerError, BrokerUnreachable, PublishRejected, Unroutable
from rabbitsync.transport.parameters import connection_parameters
from rabbitsync.transport.translation import IO_ERRORS, translate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to publish: where it goes, its body, and its properties, free of pika types."""

    exchange: str
    routing_key: str
    body: bytes
    properties: MessageProperties
    headers: Mapping[str, Any] | None = None
    mandatory: bool = False
    """Unroutable means failure (:class:`~rabbitsync.transport.errors.Unroutable`). Retry and
    dead-letter copies set it, and so does the relay: on the events exchange the alternate exchange
    keeps what no subscription takes, so a return means that safety net is missing, and the row stays."""


def pika_properties(message: OutgoingMessage, *, user_id: str | None = None) -> pika.BasicProperties:
    """The pika form of a message's properties and headers, sent as ``user_id`` when given."""
    props = message.properties
    return pika.BasicProperties(
        content_type=props.content_type,
        delivery_mode=props.delivery_mode,
        message_id=props.message_id,
        type=props.type,
        timestamp=props.timestamp,
        user_id=user_id,
        headers=dict(message.headers) if message.headers else None,
    )


class PublishHandle:
    """The fate of one submitted batch: done when every message is settled or the batch failed.

    Each message is settled on its own (confirmed, or refused: nacked or returned), so a caller that
    sends many rows at once learns which ones the broker refused (:meth:`outcomes`) instead of
    failing them all for one bad message.
    """

    def __init__(self, count: int) -> None:
        self._outcomes: list[BrokerError | object | None] = [_PENDING] * count
        self._remaining = count
        self._error: BrokerError | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        if count == 0:
            self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float) -> None:
        """Return when all messages are confirmed; raise the first failure otherwise."""
        if not self._done.wait(max(timeout, 0.0)):
            self.fail(BrokerUnreachable(f"no publisher confirms within {timeout:.0f}s"))
        if self._error is not None:
            raise self._error

    def outcomes(self) -> list[BrokerError | None]:
        """Per message, in submission order: ``None`` if confirmed, else why not (the batch's failure
        for messages never settled)."""
        with self._lock:
            failure = self._error or BrokerUnreachable("not confirmed")
            return [failure if o is _PENDING else o for o in self._outcomes]  # type: ignore[misc]

    def confirm(self, count: int = 1) -> None:
        """The next ``count`` unsettled messages are confirmed."""
        with self._lock:
            for position, outcome in enumerate(self._outcomes):
                if count <= 0:
                    break
                if outcome is _PENDING:
                    self._settle(position, None)
                    count -= 1

    def settle(self, position: int, error: BrokerError | None) -> None:
        """The message at ``position`` is confirmed (``None``) or refused by the broker."""
        with self._lock:
            if not self._done.is_set() and self._outcomes[position] is _PENDING:
                self._settle(position, error)

    def fail(self, error: BrokerError) -> None:
        """The whole batch failed (connection lost, confirms overdue): every unsettled message with it."""
        with self._lock:
            if not self._done.is_set():
                self._error = self._error or error
                self._done.set()

    def _settle(self, position: int, error: BrokerError | None) -> None:
        self._outcomes[position] = error
        if error is not None and self._error is None:
            self._error = error
        self._remaining -= 1
        if self._remaining <= 0:
            self._done.set()


_PENDING = object()
"""A message of a batch not settled yet."""


class ConfirmedPublisher:
    """Owns one connection and one confirm-mode channel, redialled with jittered backoff."""

    def __init__(
        self,
        endpoint: BrokerEndpoint,
        *,
        name: str,
        timeouts: Timeouts,
        reconnect_max_delay: float = 15.0,
        on_reconnect: Callable[[], None] | None = None,
    ) -> None:
        self._params = connection_parameters(endpoint, name=name, timeouts=timeouts)
        self._user_id = endpoint.username
        self._name = name
        self._backoff = Backoff(cap=reconnect_max_delay)
        self._on_reconnect = on_reconnect
        self._closing = threading.Event()
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # Owned by the I/O thread, except `_connection` which submit() reads under the lock.
        self._connection: pika.SelectConnection | None = None
        self._channel: Any = None
        self._next_tag = 0
        self._unconfirmed: dict[int, tuple[PublishHandle, int, OutgoingMessage]] = {}
        self._returned: set[str] = set()
        self._outstanding: set[PublishHandle] = set()

    # -- caller side -----------------------------------------------------------------------------

    def start(self) -> ConfirmedPublisher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"{self._name}-io", daemon=True)
            self._thread.start()
        return self

    def ready(self) -> bool:
        """Connected with a confirm-mode channel open."""
        return self._ready.is_set()

    def submit(self, messages: Sequence[OutgoingMessage]) -> PublishHandle:
        handle = PublishHandle(len(messages))
        if not messages:
            return handle
        with self._lock:
            connection = self._connection
            if not self._ready.is_set() or connection is None:
                handle.fail(BrokerUnreachable("not connected to the broker"))
                return handle
            self._outstanding.add(handle)
        try:
            connection.ioloop.add_callback_threadsafe(partial(self._publish_now, handle, list(messages)))
        except Exception as e:  # a closed ioloop refuses callbacks; any reason means "not now"
            handle.fail(BrokerUnreachable(f"connection is closing: {e}"))
        return handle

    def publish(self, messages: Sequence[OutgoingMessage], timeout: float) -> None:
        """Publish and wait for every confirm; raises :class:`BrokerError` on any failure.

        ``timeout`` bounds the whole call (waiting for a channel, then for the confirms): callers
        size leases on it (see ``relay_lease``), so it must never add up to twice that.
        """
        handle, deadline = self._send(messages, timeout)
        handle.wait(deadline - time.monotonic())

    def publish_each(self, messages: Sequence[OutgoingMessage], timeout: float) -> list[BrokerError | None]:
        """Publish and wait, like :meth:`publish`, but report per message instead of raising:
        ``None`` for a confirmed message, else the reason it was not (refused, or the batch failed)."""
        handle, deadline = self._send(messages, timeout)
        with contextlib.suppress(BrokerError):  # the outcomes carry it
            handle.wait(deadline - time.monotonic())
        return handle.outcomes()

    def _send(self, messages: Sequence[OutgoingMessage], timeout: float) -> tuple[PublishHandle, float]:
        deadline = time.monotonic() + timeout
        self._ready.wait(timeout)
        return self.submit(messages), deadline

    def close(self, timeout: float = 5.0) -> None:
        self._closing.set()
        with self._lock:
            connection = self._connection
        if connection is not None:
            try:
                connection.ioloop.add_callback_threadsafe(self._close_now)
            except Exception:  # already stopped: the thread is on its way out anyway
                log.debug("publisher ioloop already closed", exc_info=True)
        if self._thread is not None:
            self._thread.join(timeout)

    # -- I/O thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._closing.is_set():
            connection = pika.SelectConnection(
                self._params,
                on_open_callback=self._on_open,
                on_open_error_callback=self._on_open_error,
                on_close_callback=self._on_closed,
            )
            with self._lock:
                self._connection = connection
            try:
                connection.ioloop.start()
            except Exception:  # never let the I/O thread die: log, redial
                log.exception("publisher I/O loop crashed")
            with self._lock:
                self._ready.clear()
                self._connection = None
            self._fail_everything(BrokerUnreachable("connection to the broker lost"))
            if self._closing.is_set():
                break
            delay = self._backoff.next()
            log.warning("publisher reconnecting", extra={"delay_s": round(delay, 2)})
            if self._on_reconnect is not None:
                self._on_reconnect()
            self._closing.wait(delay)

    def _on_open(self, connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_open_error(self, connection: pika.SelectConnection, error: BaseException) -> None:
        log.warning("publisher cannot connect", extra={"error": str(error)})
        connection.ioloop.stop()

    def _on_closed(self, connection: pika.SelectConnection, reason: BaseException) -> None:
        if not self._closing.is_set():
            log.warning("publisher connection closed", extra={"error": str(reason)})
        connection.ioloop.stop()

    def _on_channel_open(self, channel: Any) -> None:
        self._channel = channel
        self._next_tag = 0
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_confirm_mode)

    def _on_confirm_mode(self, _frame: Any) -> None:
        self._backoff.reset()
        self._ready.set()

    def _on_channel_closed(self, _channel: Any, reason: BaseException) -> None:
        # E.g. 404 on a missing exchange: tell the waiters why, then redial for a clean channel.
        self._ready.clear()
        self._fail_everything(PublishRejected(f"channel closed by the broker: {reason}"))
        connection = self._connection
        if connection is not None and connection.is_open:
            connection.close()

    def _publish_now(self, handle: PublishHandle, messages: list[OutgoingMessage]) -> None:
        if handle.done():  # failed or timed out before we got here: do not send late copies
            self._forget(handle)
            return
        channel = self._channel
        if channel is None or not channel.is_open or not self._ready.is_set():
            handle.fail(BrokerUnreachable("channel not open"))
            self._forget(handle)
            return
        try:
            for position, message in enumerate(messages):
                channel.basic_publish(
                    message.exchange,
                    message.routing_key,
                    message.body,
                    pika_properties(message, user_id=self._user_id),
                    mandatory=message.mandatory,
                )
                self._next_tag += 1
                self._unconfirmed[self._next_tag] = (handle, position, message)
        except IO_ERRORS as e:
            handle.fail(translate(e))

    def _on_return(self, _channel: Any, _method: Any, properties: Any, _body: bytes) -> None:
        # The broker sends basic.return before the basic.ack of the same message.
        if properties.message_id:
            self._returned.add(properties.message_id)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tags = [t for t in self._unconfirmed if t <= method.delivery_tag] if method.multiple else [method.delivery_tag]
        nacked = isinstance(method, Basic.Nack)
        for tag in tags:
            entry = self._unconfirmed.pop(tag, None)
            if entry is None:
                continue
            handle, position, message = entry
            message_id = message.properties.message_id
            if nacked:
                handle.settle(position, PublishRejected(f"broker nacked message {message_id}"))
            elif message.mandatory and message_id in self._returned:
                self._returned.discard(message_id)
                handle.settle(position, Unroutable(f"unroutable: no queue for {message.routing_key!r}"))
            else:
                handle.settle(position, None)
            if handle.done():
                self._forget(handle)

    def _forget(self, handle: PublishHandle) -> None:
        with self._lock:
            self._outstanding.discard(handle)

    def _fail_everything(self, error: BrokerError) -> None:
        for handle, _position, _message in self._unconfirmed.values():
            handle.fail(error)
        self._unconfirmed.clear()
        self._returned.clear()
        with self._lock:
            outstanding, self._outstanding = self._outstanding, set()
        for handle in outstanding:
            handle.fail(error)
        self._channel = None

    def _close_now(self) -> None:
        connection = self._connection
        if connection is not None and (connection.is_open or connection.is_opening):
            connection.close()
        elif connection is not None:
            connection.ioloop.stop()
