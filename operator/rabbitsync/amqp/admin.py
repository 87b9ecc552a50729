"""Apply a topology plan over AMQP with pika: one short-lived connection per reconcile.

A connection per reconcile, not a long-lived one, so a broker that force-closes idle connections (the
seed's hosted broker did) can never leave the operator holding a dead one; reconciles are rare enough
that the handshake does not matter. Timeouts are short so an unreachable broker fails fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pika
from pika.adapters.blocking_connection import BlockingChannel

from rabbitsync.amqp.port import ApplyOutcome
from rabbitsync.topology.diff import EXCHANGE_TYPE, Plan
from rabbitsync.transport import BrokerEndpoint, NotFound, Timeouts, connect, translated

T = TypeVar("T")

CONNECTION_NAME = "rabbitsync-operator"


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
        # connect() translates what channel (re)opening raises; channel methods translate their own.
        with connect(self._endpoint, name=CONNECTION_NAME, timeouts=self._timeouts) as connection:
            yield _Session(connection)


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
        with translated():
            return method(*args, **kwargs)
