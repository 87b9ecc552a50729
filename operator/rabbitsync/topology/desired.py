"""The topology a subscription should have on the broker, computed purely from its spec.

Layout for main queue ``Q`` (names from ``naming``)::

    exchange --(routing key = <namespace>.<event type>)--> Q --(dead-letter)--> Q.dlq
    sidecar publishes a failed delivery to Q.retry.<d>ms --(TTL d, dead-letter)--> Q

One delay queue per *distinct* backoff step: a queue-level TTL expires every message in order, while
per-message TTLs on one shared queue only expire at the head (a 1 s retry would wait behind a 60 s one).
Delay queues reach ``Q`` through the default exchange (routing key = queue name), so retries go back to
this subscription only, never to other subscribers of the event type.

The binding keys carry the subscription's namespace (:func:`rabbitsync.conventions.routing_key`), as
the relay's routing keys carry the publisher's: the same namespace in two clusters is one sync domain,
two namespaces on one broker never receive each other's events. A queue still bound with the bare
types of an older release is re-bound by the usual diff (the bare keys unbound, the prefixed bound).
One more binding per queue (:func:`rabbitsync.conventions.backfill_binding_key`) lets a publisher
address a snapshot to this queue alone through the same exchange and the same topic permissions.

All queues share the spec's queue type. Quorum queues carry a queue-level message TTL since RabbitMQ
3.10, so delay queues need not fall back to classic ones; quorum queues that dead-letter use the
``at-least-once`` strategy (which needs ``x-overflow: reject-publish``), because the default
``at-most-once`` drops a message if the target queue is briefly unavailable. A quorum main queue
also gets an explicit delivery limit, as an argument (``delivery_limit`` says why, how much, and when
a policy still has to add to it).
"""

from __future__ import annotations

from typing import Any

from rabbitsync.api.syncsubscription import SyncSubscriptionSpec
from rabbitsync.conventions import backfill_binding_key, routing_key
from rabbitsync.topology import naming, retry
from rabbitsync.topology.delivery_limit import ARGUMENT, delivery_limit
from rabbitsync.topology.model import Binding, Queue, QueueRole, Topology


def desired_topology(
    *, cluster: str, namespace: str, subscription: str, spec: SyncSubscriptionSpec, exchange: str
) -> Topology:
    """Queues and bindings for ``subscription`` in ``namespace`` of ``cluster``."""
    main = naming.queue_name(cluster, namespace, subscription)
    dlq = naming.dead_letter_queue_name(main)
    queue_type = spec.queue_type
    delays = sorted(
        set(retry.backoff_delays(spec.retry.max_attempts, spec.retry.initial_backoff_ms, spec.retry.max_backoff_ms))
    )
    main_arguments = _dead_lettering(queue_type, to=dlq)
    # Only quorum queues know a delivery limit (see ``delivery_limit``).
    if queue_type == "quorum":
        main_arguments[ARGUMENT] = delivery_limit(spec.retry.max_attempts)
    queues = (
        Queue(main, QueueRole.MAIN, main_arguments),
        *(
            Queue(
                naming.retry_queue_name(main, delay),
                QueueRole.RETRY,
                {**_dead_lettering(queue_type, to=main), "x-message-ttl": delay},
            )
            for delay in delays
        ),
        # The DLQ exists even with deadLetter=false so that toggling it never changes Q's arguments,
        # which RabbitMQ cannot do in place.
        Queue(dlq, QueueRole.DEAD_LETTER, {"x-queue-type": queue_type}),
    )
    bindings = frozenset(
        (
            *(Binding(exchange, main, routing_key(namespace, event)) for event in spec.events),
            Binding(exchange, main, backfill_binding_key(namespace, main)),
        )
    )
    return Topology(exchange=exchange, queues=queues, bindings=bindings)


def _dead_lettering(queue_type: str, *, to: str) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "x-queue-type": queue_type,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": to,
    }
    if queue_type == "quorum":
        arguments |= {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
    return arguments
