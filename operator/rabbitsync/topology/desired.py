"""The topology a subscription should have on the broker, computed purely from its spec.

Layout for main queue ``Q`` (names from ``naming``)::

    exchange --(routing key = <namespace>.<event type>)--> Q --(dead-letter)--> Q.dlq
    sidecar publishes a failed delivery to the cluster's delay exchange of that backoff step, routing
    key Q --(TTL, dead-letter)--> the cluster's retries exchange --(routing key Q)--> Q

The delay queues, one per *distinct* backoff step and queue type, are shared by the cluster's
subscriptions (:mod:`rabbitsync.topology.delays` says how, and why retries still go back to this
subscription only). Releases before them declared ``Q.retry.<d>ms`` per subscription: those are not
desired any more, so the diff retires them like any delay queue the schedule dropped.

The binding keys carry the subscription's namespace (:func:`rabbitsync.conventions.routing_key`), as
the relay's routing keys carry the publisher's: the same namespace in two clusters is one sync domain,
two namespaces on one broker never receive each other's events. A queue still bound with the bare
types of an older release is re-bound by the usual diff (the bare keys unbound, the prefixed bound).
One more binding per queue (:func:`rabbitsync.conventions.backfill_binding_key`) lets a publisher
address a snapshot to this queue alone through the same exchange and the same topic permissions.

All queues share the spec's queue type (the delay queues are chosen by it). Quorum queues carry a
queue-level message TTL since RabbitMQ 3.10, so delay queues need not fall back to classic ones;
quorum queues that dead-letter use the ``at-least-once`` strategy (``delays.dead_lettering``). A
quorum main queue also gets an explicit delivery limit, as an argument (``delivery_limit`` says why,
how much, and when a policy still has to add to it).
"""

from __future__ import annotations

from rabbitsync.api.syncsubscription import SyncSubscriptionSpec
from rabbitsync.conventions import backfill_binding_key, routing_key
from rabbitsync.topology import naming, retry
from rabbitsync.topology.delays import dead_lettering, shared_delays
from rabbitsync.topology.delivery_limit import ARGUMENT, delivery_limit
from rabbitsync.topology.model import Binding, Queue, QueueRole, Topology


def desired_topology(
    *, cluster: str, namespace: str, subscription: str, spec: SyncSubscriptionSpec, exchange: str
) -> Topology:
    """Queues and bindings for ``subscription`` in ``namespace`` of ``cluster``."""
    main = naming.queue_name(cluster, namespace, subscription)
    dlq = naming.dead_letter_queue_name(main)
    queue_type = spec.queue_type
    shared = shared_delays(
        cluster=cluster,
        queue_type=queue_type,
        main_queue=main,
        delays=retry.backoff_delays(spec.retry.max_attempts, spec.retry.initial_backoff_ms, spec.retry.max_backoff_ms),
    )
    main_arguments = dead_lettering(queue_type, exchange="", routing_key=dlq)
    # Only quorum queues know a delivery limit (see ``delivery_limit``).
    if queue_type == "quorum":
        main_arguments[ARGUMENT] = delivery_limit(spec.retry.max_attempts)
    queues = (
        Queue(main, QueueRole.MAIN, main_arguments),
        *shared.queues,
        # The DLQ exists even with deadLetter=false so that toggling it never changes Q's arguments,
        # which RabbitMQ cannot do in place.
        Queue(dlq, QueueRole.DEAD_LETTER, {"x-queue-type": queue_type}),
    )
    bindings = frozenset(
        (
            *(Binding(exchange, main, routing_key(namespace, event)) for event in spec.events),
            Binding(exchange, main, backfill_binding_key(namespace, main)),
            *shared.bindings,
        )
    )
    return Topology(exchange=exchange, queues=queues, bindings=bindings, exchanges=shared.exchanges)
