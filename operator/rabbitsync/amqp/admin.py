"""Apply a topology plan over AMQP with pika: one short-lived connection per reconcile.

A connection per reconcile, not a long-lived one, so a broker that force-closes idle connections (the
seed's hosted broker did) can never leave the operator holding a dead one; reconciles are rare enough
that the handshake does not matter. Timeouts are short so an unreachable broker fails fast.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from rabbitsync.amqp.endpoint import BrokerEndpoint, Timeouts
from rabbitsync.transport.errors import (
    AccessRefused,
    BrokerError,
    BrokerUnreachable,
    InvalidEndpoint,
    NotFound,
    PreconditionFailed,
)
from rabbitsync.amqp.port import ApplyOutcome
from rabbitsync.topology.diff import EXCHANGE_TYPE, Plan

T = TypeVar("T")


class BrokerAdmin:
    """Declares, binds, unbinds and deletes on one broker."""

    def __init__(self, endpoint: BrokerEndpoint, timeouts: Timeouts | None = None) -> None:
        self._endpoint = endpoint
        self._timeouts = timeouts or Timeouts()

    def apply(self, plan: Plan) -> ApplyOutcome:
        """Run ``plan`` in order: exchange, queues, bindings, unbindings, deletions."""
        if plan.empty:
            return ApplyOutcome()
        kept: list[str] = []
        with self._channel() as session:
            if plan.declare_exchange:
                session.channel.exchange_declare(plan.declare_exchange, exchange_type=EXCHANGE_TYPE, durable=True)
            for queue in plan.declare_queues:
                session.channel.queue_declare(queue.name, durable=True, arguments=dict(queue.arguments))
            for binding in plan.bind:
                session.channel.queue_bind(binding.queue, binding.exchange, routing_key=binding.routing_key)
            for binding in plan.unbind:
                try:
                    session.channel.queue_unbind(binding.queue, binding.exchange, routing_key=binding.routing_key)
                except NotFound:  # exchange or queue already gone: so is the binding
                    session.reopen()
            for deletion in plan.delete_queues:
                try:
                    # Quorum queues refuse queue.delete with if-empty (540 NOT_IMPLEMENTED, closing the
                    # connection), so emptiness is checked with a passive declare for every type. A
                    # message published between check and delete is lost: delay queues only become
                    # obsolete after the sidecar's schedule changed, so none should arrive by then.
                    if deletion.if_empty and session.channel.message_count(deletion.name):
                        kept.append(deletion.name)
                        continue
                    session.channel.queue_delete(deletion.name)
                except NotFound:
                    session.reopen()
        return ApplyOutcome(kept_not_empty=tuple(kept))

    @contextmanager
    def _channel(self) -> Iterator[_Session]:
        try:
            connection = pika.BlockingConnection(self._parameters())
        except _PIKA_ERRORS as e:
            raise translate(e) from e
        try:
            yield _Session(connection)
        except _PIKA_ERRORS as e:  # channel (re)opening; channel methods translate their own
            raise translate(e) from e
        finally:
            # The broker may have dropped the connection already; closing is best effort.
            with contextlib.suppress(*_PIKA_ERRORS):
                if connection.is_open:
                    connection.close()

    def _parameters(self) -> pika.URLParameters:
        try:
            params = pika.URLParameters(self._endpoint.amqp_uri)
        except ValueError as e:
            raise InvalidEndpoint(f"the broker uri is not usable: {e}") from e
        params.connection_attempts = 1
        params.socket_timeout = self._timeouts.connect_s
        params.stack_timeout = self._timeouts.connect_s * 2
        params.blocked_connection_timeout = self._timeouts.operation_s
        # A broker that stops answering mid-reconcile is noticed by missed heartbeats.
        params.heartbeat = max(2, int(self._timeouts.operation_s))
        if self._endpoint.tls:
            try:
                context = ssl.create_default_context(cadata=self._endpoint.ca_pem)
            except (ssl.SSLError, ValueError) as e:
                raise InvalidEndpoint(f"the CA bundle is not valid PEM: {e}") from e
            params.ssl_options = pika.SSLOptions(context, server_hostname=self._endpoint.host)
        return params


class _Session:
    """A connection and its current channel; a channel closed by a broker error is replaced."""

    def __init__(self, connection: pika.BlockingConnection) -> None:
        self._connection = connection
        self._channel = connection.channel()

    @property
    def channel(self) -> _TranslatingChannel:
        return _TranslatingChannel(self._channel)

    def reopen(self) -> None:
        self._channel = self._connection.channel()


class _TranslatingChannel:
    """The few channel methods we use, raising the package's own errors."""

    def __init__(self, channel: BlockingChannel) -> None:
        self._channel = channel

    def exchange_declare(self, exchange: str, *, exchange_type: str, durable: bool) -> None:
        self._call(self._channel.exchange_declare, exchange, exchange_type=exchange_type, durable=durable)

    def queue_declare(self, queue: str, *, durable: bool, arguments: dict[str, Any]) -> None:
        self._call(self._channel.queue_declare, queue, durable=durable, arguments=arguments)

    def queue_bind(self, queue: str, exchange: str, *, routing_key: str) -> None:
        self._call(self._channel.queue_bind, queue, exchange, routing_key=routing_key)

    def queue_unbind(self, queue: str, exchange: str, *, routing_key: str) -> None:
        self._call(self._channel.queue_unbind, queue, exchange, routing_key=routing_key)

    def queue_delete(self, queue: str) -> None:
        self._call(self._channel.queue_delete, queue)

    def message_count(self, queue: str) -> int:
        """Ready messages in ``queue`` (a passive declare: 404 if it does not exist)."""
        declared = self._call(self._channel.queue_declare, queue, passive=True)
        return int(declared.method.message_count)

    @staticmethod
    def _call(method: Callable[..., T], *args: object, **kwargs: object) -> T:
        try:
            return method(*args, **kwargs)
        except _PIKA_ERRORS as e:
            raise translate(e) from e


_PIKA_ERRORS = (pika.exceptions.AMQPError, OSError)


def translate(e: pika.exceptions.AMQPError | OSError) -> BrokerError:
    """The package's error for a pika or socket failure."""
    if isinstance(e, pika.exceptions.ChannelClosedByBroker | pika.exceptions.ConnectionClosedByBroker):
        return _by_reply_code(e.reply_code, e.reply_text)
    if isinstance(e, pika.exceptions.ProbableAuthenticationError | pika.exceptions.ProbableAccessDeniedError):
        return AccessRefused(f"broker refused the login: {e}")
    return BrokerUnreachable(f"broker unreachable: {e!r}")


def _by_reply_code(code: int, text: str) -> BrokerError:
    if code == 406:
        return PreconditionFailed(text)
    if code == 404:
        return NotFound(text)
    if code == 530 and "not found" in text.lower():  # NOT_ALLOWED - vhost ... not found
        return NotFound(text)
    if code in (403, 530):
        return AccessRefused(text)
    if code == 320:  # CONNECTION_FORCED: broker shutting down or an operator closed us
        return BrokerUnreachable(text)
    return BrokerError(f"broker closed the channel ({code}): {text}")
