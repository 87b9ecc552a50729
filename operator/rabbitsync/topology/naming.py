"""Broker-side names, derived from who owns them.

Every object an operator creates carries its cluster's name, so two operators sharing one broker
never touch each other's queues. Delay queues are named by their TTL: RabbitMQ cannot change a
queue's arguments in place, so a changed backoff yields new queues instead of a silent mismatch.
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
    """The delay queue holding retries for ``delay_ms`` before they return to ``queue``."""
    return f"{queue}.retry.{delay_ms}ms"


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
