"""Broker-side names, derived from who owns them.

Every object an operator creates carries its cluster's name, so two operators sharing one broker
never touch each other's queues. Delay queues are named by their TTL: RabbitMQ cannot change a
queue's arguments in place, so a changed backoff yields new queues instead of a silent mismatch.
They are shared by every subscription of a cluster (:mod:`rabbitsync.topology.delays`); the names
that hold ``@`` (which no Kubernetes name has) can never be a subscription's.
"""

from __future__ import annotations

import re

PREFIX = "rabbitsync"

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _part(value: str) -> str:
    if not value:
        raise ValueError("name parts must not be empty")
    return _UNSAFE.sub("-", value)


def queue_name(cluster: str, namespace: str, subscription: str) -> str:
    """The subscription's main queue in one cluster."""
    return ".".join((PREFIX, _part(cluster), _part(namespace), _part(subscription)))


def retry_queue_name(queue: str, delay_ms: int) -> str:
    """The delay queue of ``queue`` alone that releases before shared delay queues declared.

    Still known so that those queues are retired (once empty, and once no pod publishes into them)
    and deleted with their subscription; nothing declares one any more.
    """
    return f"{queue}.retry.{delay_ms}ms"


def delay_name(cluster: str, queue_type: str, delay_ms: int) -> str:
    """The topic exchange and the queue (one name for both) holding ``cluster``'s retries for ``delay_ms``.

    One per queue type, as every queue of a subscription shares its type (a quorum subscription's
    retries wait in a replicated queue).
    """
    return ".".join((_delay_prefix(cluster), _part(queue_type), f"{delay_ms}ms"))


def delay_names_pattern(cluster: str) -> str:
    """A regex (not anchored) for every :func:`delay_name` of ``cluster``, whatever the queue type and delay."""
    return re.escape(_delay_prefix(cluster)) + r"\.[a-z]+\.[0-9]+ms"


def _delay_prefix(cluster: str) -> str:
    return ".".join((PREFIX, _part(cluster), "@delay"))


def retries_exchange(cluster: str) -> str:
    """The direct exchange ``cluster``'s delay queues dead-letter into: routing key = the main queue's name."""
    return ".".join((PREFIX, _part(cluster), "@retries"))


def orphaned_retries_name(cluster: str) -> str:
    """The alternate exchange of :func:`retries_exchange` and its queue (one name for both): retries
    whose subscription was deleted while they waited."""
    return retries_exchange(cluster) + ".orphaned"


_SHARED = re.compile(r"^" + re.escape(PREFIX) + r"\.[A-Za-z0-9_.-]+\.@(delay\..+|retries\.orphaned)$")


def shared_by_cluster(queue: str) -> bool:
    """``queue`` is one a cluster's subscriptions share (a delay queue, the orphaned retries'): no one's own.

    Cluster names are sanitized to ``[A-Za-z0-9_.-]`` and Kubernetes names have no ``@``, so no
    subscription's queue can match.
    """
    return _SHARED.match(queue) is not None


def dead_letter_queue_name(queue: str) -> str:
    return f"{queue}.dlq"


def unroutable_name(exchange: str) -> str:
    """The alternate exchange, its queue and the policy setting it, for the shared ``exchange``.

    Named from the exchange, not from a cluster: both clusters' operators publish into the same
    exchange, so they keep its unroutable events in the same place and apply the same policy
    (RabbitMQ keeps exchanges, queues and policies in separate namespaces, so one name serves all three).
    """
    return f"{exchange}.unroutable"


BACKFILL_STATUS_SUFFIX = ".@backfill-status"
"""Appended to a subscription's main queue name to name its backfill status queue."""


def owned_queue_pattern(queue: str) -> str:
    """Regex matching exactly ``queue``, its delay queues, its DLQ and its backfill status queue.

    Not a plain prefix: observing "orders" must not pick up "orders-v2" or another subscription's
    queues. Anchored at both ends, in the syntax both Python and the management API's Erlang ``re``
    read the same way. The status queue is the subscription's although no topology declares it (a
    backfill does, when it starts): so the subscription's cleanup deletes it with the others, and
    the orphan collector collects it with them.
    """
    return f"^{re.escape(queue)}(\\.retry\\.[0-9]+ms|\\.dlq|{re.escape(BACKFILL_STATUS_SUFFIX)})?$"


BACKFILL_REQUESTS_SUFFIX = ".@backfill-requests"
"""Appended to a service's name (which is also its broker user's) to name its backfill request queue."""


def backfill_request_queue(cluster: str, namespace: str, service: str) -> str:
    """The queue a publishing service takes backfill requests from, in one cluster.

    ``@`` appears in no subscription name, so this never collides with a subscription's queues.
    """
    return ".".join((PREFIX, _part(cluster), _part(namespace), _part(service))) + BACKFILL_REQUESTS_SUFFIX


def backfill_status_queue(queue: str) -> str:
    """Where the sidecar consuming ``queue`` reports its backfills' progress to the operator.

    Declared by the operator when a backfill starts, read on every step, deleted with the subscription
    (it is one of the queues ``owned_queue_pattern`` matches). The ``@`` keeps it apart from any
    subscription's main queue name.
    """
    return queue + BACKFILL_STATUS_SUFFIX
