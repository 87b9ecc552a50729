"""The delay queues a cluster's subscriptions share for their retries. Pure description, no I/O.

Layout for ``cluster`` (names from :mod:`rabbitsync.topology.naming`), for main queue ``Q``::

    sidecar publishes a failed delivery to the topic exchange D = @delay.<type>.<d>ms,
        routing key Q --(#)--> queue D (TTL d, dead-letter to R, no dead-letter routing key)
    R = @retries (direct) --(routing key Q)--> Q
    R's alternate exchange O = @retries.orphaned (fanout) --> queue O

Why shared: a quorum queue is a Raft group, and a delay queue per backoff step per subscription made
about four of the six queues of each subscription (6,000 Raft groups for 1,000 subscriptions). One
delay queue per distinct delay and queue type serves the whole cluster: a queue-level TTL still
expires every message in order (per-message TTLs on one queue only expire at its head), and the
broker dead-letters each message with the routing key it was published with, the main queue's name,
which ``R`` routes back to that queue only, never to the event type's other subscribers.

Why ``R`` and not the default exchange: a quorum delay queue dead-letters ``at-least-once``, and a
message that routes nowhere (its subscription deleted while it waited) is kept and retried *ahead of
the messages behind it*: measured on RabbitMQ 3.10, 100 such retries held back every later retry of
every subscription indefinitely. ``R`` has an alternate exchange, so such a retry is routed to ``O``
and kept there, and the others go on. A subscription's own binding ``R -> Q`` goes with ``Q``.

The broker keeps the properties of the copy the sidecar published, so a retry comes back through
``R`` with the sidecar's own ``user_id``; a copy anyone else put into a delay exchange comes back
with theirs, and the sidecar refuses it (:func:`rabbitsync.sidecar.trust.route`).

Shared objects are declared by every subscription that needs them (a declare of what exists is a
no-op) and deleted by none: a delay another subscription still uses must outlive any one of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rabbitsync.topology import naming
from rabbitsync.topology.model import Binding, Exchange, Queue, QueueRole

DELAY_EXCHANGE_TYPE = "topic"
"""Topic, though it binds everything (``#``) to one queue: RabbitMQ's topic permissions, which can
limit a user's routing keys on an exchange, apply to topic exchanges only."""
DELAY_BINDING_KEY = "#"
RETRIES_EXCHANGE_TYPE = "direct"
ORPHANED_EXCHANGE_TYPE = "fanout"
ORPHANED_QUEUE_TYPE = "quorum"
"""As the events exchange's unroutable queue: a retry kept there is still an event someone may want."""


@dataclass(frozen=True)
class SharedDelays:
    """The shared objects a subscription's retries go through, and the binding that returns them to it."""

    exchanges: tuple[Exchange, ...]
    queues: tuple[Queue, ...]
    bindings: frozenset[Binding]


def shared_delays(*, cluster: str, queue_type: str, main_queue: str, delays: Iterable[int]) -> SharedDelays:
    """What ``main_queue`` (of ``cluster``, of ``queue_type``) needs to retry after each of ``delays`` (ms)."""
    retries = naming.retries_exchange(cluster)
    orphaned = naming.orphaned_retries_name(cluster)
    steps = sorted(set(delays))
    names = [naming.delay_name(cluster, queue_type, delay) for delay in steps]
    return SharedDelays(
        exchanges=(
            *(Exchange(name, DELAY_EXCHANGE_TYPE) for name in names),
            Exchange(retries, RETRIES_EXCHANGE_TYPE, {"alternate-exchange": orphaned}),
            Exchange(orphaned, ORPHANED_EXCHANGE_TYPE),
        ),
        queues=(
            *(
                Queue(name, QueueRole.RETRY, {**dead_lettering(queue_type, exchange=retries), "x-message-ttl": delay})
                for name, delay in zip(names, steps, strict=True)
            ),
            Queue(orphaned, QueueRole.ORPHANED_RETRIES, {"x-queue-type": ORPHANED_QUEUE_TYPE}),
        ),
        bindings=frozenset(
            (
                *(Binding(name, name, DELAY_BINDING_KEY) for name in names),
                Binding(orphaned, orphaned, ""),
                Binding(retries, main_queue, main_queue),
            )
        ),
    )


def dead_lettering(queue_type: str, *, exchange: str, routing_key: str | None = None) -> dict[str, Any]:
    """Arguments dead-lettering into ``exchange`` (with ``routing_key``, or each message's own without).

    Quorum queues use the ``at-least-once`` strategy (which needs ``x-overflow: reject-publish``):
    the default ``at-most-once`` drops a message when its target queue is briefly unavailable.
    """
    arguments: dict[str, Any] = {"x-queue-type": queue_type, "x-dead-letter-exchange": exchange}
    if routing_key is not None:
        arguments["x-dead-letter-routing-key"] = routing_key
    if queue_type == "quorum":
        arguments |= {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
    return arguments
