"""The AMQP methods that change a broker's topology, over one connection, raising our own errors.

What the operator's topology admin needs from pika and nothing more: declare, bind, unbind, delete,
and a passive declare to count messages. A broker error closes the channel it happened on, so
:meth:`Declarations.reopen` gives the caller a fresh one to carry on with the rest of its plan.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import pika
from pika.adapters.blocking_connection import BlockingChannel

from rabbitsync.transport.endpoint import BrokerEndpoint, Timeouts
from rabbitsync.transport.errors import BrokerUnreachable
from rabbitsync.transport.parameters import connection_parameters
from rabbitsync.transport.session import connect
from rabbitsync.transport.translation import IO_ERRORS, translated

T = TypeVar("T")


@contextmanager
def declarations(endpoint: BrokerEndpoint, *, name: str, timeouts: Timeouts) -> Iterator[Declarations]:
    """:class:`Declarations` on a connection of their own for the ``with`` block."""
    with connect(endpoint, name=name, timeouts=timeouts) as connection:
        yield Declarations(connection)


def open_declarations(endpoint: BrokerEndpoint, *, name: str, timeouts: Timeouts) -> Declarations:
    """:class:`Declarations` on a connection the caller keeps (and ends with :meth:`Declarations.close`)."""
    with translated():
        return Declarations(pika.BlockingConnection(connection_parameters(endpoint, name=name, timeouts=timeouts)))


class Declarations:
    """A connection and its current channel; a channel closed by a broker error is replaced on request."""

    def __init__(self, connection: pika.BlockingConnection) -> None:
        self._connection = connection
        self._channel: BlockingChannel = connection.channel()

    def ping(self) -> None:
        """Answer heartbeats and notice a connection the broker closed while it sat idle (raises)."""
        # pika raises a bare ValueError from its closed ioloop when asked to process a closed connection.
        try:
            if not self._connection.is_open:
                raise ValueError("closed")
            _call(self._connection.process_data_events, time_limit=0)
        except ValueError as e:
            raise BrokerUnreachable("the kept connection was closed") from e
        if not self._channel.is_open:
            self.reopen()

    def close(self) -> None:
        """Close the connection, best effort: the broker may have dropped it already."""
        with contextlib.suppress(*IO_ERRORS):
            if self._connection.is_open:
                self._connection.close()

    def reopen(self) -> None:
        """A new channel after the broker closed the current one (404, 406 ...)."""
        self._channel = _call(self._connection.channel)

    def exchange_declare(
        self, exchange: str, *, exchange_type: str, durable: bool, arguments: Mapping[str, Any] | None = None
    ) -> None:
        _call(
            self._channel.exchange_declare,
            exchange,
            exchange_type=exchange_type,
            durable=durable,
            arguments=dict(arguments or {}),
        )

    def queue_declare(self, queue: str, *, durable: bool, arguments: dict[str, Any]) -> None:
        _call(self._channel.queue_declare, queue, durable=durable, arguments=arguments)

    def queue_bind(self, queue: str, exchange: str, *, routing_key: str) -> None:
        _call(self._channel.queue_bind, queue, exchange, routing_key=routing_key)

    def queue_unbind(self, queue: str, exchange: str, *, routing_key: str) -> None:
        _call(self._channel.queue_unbind, queue, exchange, routing_key=routing_key)

    def queue_delete(self, queue: str) -> None:
        _call(self._channel.queue_delete, queue)

    def message_count(self, queue: str) -> int:
        """Ready messages in ``queue`` (a passive declare: :class:`NotFound` if it does not exist)."""
        return int(self._passive(queue).message_count)

    def consumer_count(self, queue: str) -> int:
        """Consumers on ``queue`` now, as the queue itself counts them (a passive declare: :class:`NotFound`
        if it does not exist)."""
        return int(self._passive(queue).consumer_count)

    def _passive(self, queue: str) -> Any:
        return _call(self._channel.queue_declare, queue, passive=True).method


def _call(method: Callable[..., T], *args: object, **kwargs: object) -> T:
    with translated():
        return method(*args, **kwargs)
