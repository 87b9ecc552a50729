"""Apply a topology plan over AMQP: one short-lived connection per reconcile.

A connection per reconcile, not a long-lived one, so a broker that force-closes idle connections (the
seed's hosted broker did) can never leave the operator holding a dead one; reconciles are rare enough
that the handshake does not matter. Timeouts are short so an unreachable broker fails fast.
"""

from __future__ import annotations

from rabbitsync.amqp.port import ApplyOutcome
from rabbitsync.topology.diff import EXCHANGE_TYPE, Plan
from rabbitsync.transport import BrokerEndpoint, NotFound, Timeouts, declarations

CONNECTION_NAME = "rabbitsync-operator"


class BrokerAdmin:
    """Declares, binds, unbinds and deletes on one broker."""

    def __init__(self, endpoint: BrokerEndpoint, timeouts: Timeouts | None = None) -> None:
        self._endpoint = endpoint
        self._timeouts = timeouts or Timeouts()

    def apply(self, plan: Plan) -> ApplyOutcome:
        """Run ``plan`` in order: exchange, queues, bindings, unbindings, deletions."""
        if not plan.amqp_work:
            return ApplyOutcome()
        kept: list[str] = []
        with declarations(self._endpoint, name=CONNECTION_NAME, timeouts=self._timeouts) as broker:
            if plan.declare_exchange:
                broker.exchange_declare(plan.declare_exchange, exchange_type=EXCHANGE_TYPE, durable=True)
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
