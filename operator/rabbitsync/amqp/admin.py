"""Apply a topology plan over AMQP, on a connection from ``connections``.

The operator passes its ``ConnectionPool`` (one kept connection per broker, replaced when the broker
dropped it); the CLI and tests default to ``OneShot``, a connection per plan. Timeouts are short so
an unreachable broker fails fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from rabbitsync.amqp.connections import Connections, OneShot
from rabbitsync.amqp.port import ApplyOutcome
from rabbitsync.topology.diff import EXCHANGE_TYPE, Plan
from rabbitsync.transport import BrokerEndpoint, Declarations, NotFound, Timeouts

T = TypeVar("T")


class BrokerAdmin:
    """Declares, binds, unbinds and deletes on one broker."""

    def __init__(
        self, endpoint: BrokerEndpoint, timeouts: Timeouts | None = None, connections: Connections | None = None
    ) -> None:
        self._endpoint = endpoint
        self._timeouts = timeouts or Timeouts()
        self._connections = connections or OneShot()

    def apply(self, plan: Plan) -> ApplyOutcome:
        """Run ``plan`` in order: exchanges, queues, bindings, unbindings, deletions."""
        if not plan.amqp_work:
            return ApplyOutcome()
        return self.run(lambda broker: _apply(broker, plan))

    def consumers(self, queue: str) -> int | None:
        """Consumers on ``queue`` now; None if it does not exist."""
        return self.run(lambda broker: _consumers(broker, queue))

    def run(self, work: Callable[[Declarations], T]) -> T:
        """``work`` on this broker's connection (in the operator, the pool's kept one)."""
        return self._connections.run(self._endpoint, self._timeouts, work)


def _consumers(broker: Declarations, queue: str) -> int | None:
    try:
        return broker.consumer_count(queue)
    except NotFound:
        broker.reopen()
        return None


def _apply(broker: Declarations, plan: Plan) -> ApplyOutcome:
    kept: list[str] = []
    if plan.declare_exchange:
        broker.exchange_declare(plan.declare_exchange, exchange_type=EXCHANGE_TYPE, durable=True)
    # Before the queues: the delay queues dead-letter into the retries exchange, and the bindings need them.
    for exchange in plan.declare_exchanges:
        broker.exchange_declare(exchange.name, exchange_type=exchange.type, durable=True, arguments=exchange.arguments)
    for queue in plan.declare_queues:
        broker.queue_declare(queue.name, durable=True, arguments=dict(queue.arguments))
    for binding in plan.bind:
        broker.queue_bind(binding.queue, binding.exchange, routing_key=binding.routing_key)
    for binding in plan.unbind:
        try:
            broker.queue_unbind(binding.queue, binding.exchange, routing_key=binding.routing_key)
        except NotFound:  # exchange or queue already gone: so is the binding
            broker.reopen()
    for deletion in plan.delete_queues:
        try:
            # Quorum queues refuse queue.delete with if-empty (540 NOT_IMPLEMENTED, closing the
            # connection), so emptiness is checked with a passive declare for every type. A
            # message published between check and delete is lost: delay queues only become
            # obsolete after the sidecar's schedule changed, so none should arrive by then.
            if deletion.if_empty and broker.message_count(deletion.name):
                kept.append(deletion.name)
                continue
            broker.queue_delete(deletion.name)
        except NotFound:
            broker.reopen()
    return ApplyOutcome(kept_not_empty=tuple(kept))
