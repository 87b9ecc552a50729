"""One service's broker user as the operator wants it: name, password, permissions, limits. Pure.

The rights are the whole trust model of the shared broker: a service may read only its own queues,
publish only the types it declared (topic permissions on the events exchange) and configure nothing,
so a leaked pod credential cannot consume, purge, bind or forge beyond what that service already does.
The patterns are RabbitMQ permission regexes, built here from names so that they are tested without a
broker (``rights_for``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from rabbitsync.conventions import BACKFILL_MARK, routing_key, trace_name
from rabbitsync.topology import naming

NOTHING = "^$"
"""A permission pattern no resource name matches (names are never empty in our vhost's use)."""

DEFAULT_EXCHANGE_RESOURCE = "amq.default"
"""How RabbitMQ names the default exchange in permission checks: the sidecar sends dead letters to its
own DLQ through it (and a sidecar of an older release its retries to its own delay queues). RabbitMQ
checks only this exchange, not the queue a default-exchange publish lands in, so whoever may write it
may write into any queue of the vhost (verified on 3.10): receivers must accept a delivery that came
through the default exchange only from their own user (its ``user_id``), which the broker guarantees."""


@dataclass(frozen=True)
class Permissions:
    """``configure``, ``write`` and ``read`` regexes of one user in one vhost."""

    configure: str
    write: str
    read: str


@dataclass(frozen=True)
class TopicPermissions:
    """Which routing keys a user may publish (``write``) and bind (``read``) on one topic exchange."""

    exchange: str
    write: str
    read: str


@dataclass(frozen=True)
class UserLimits:
    """Broker-side caps on one user, so a runaway service cannot exhaust the shared broker."""

    max_connections: int
    max_channels: int


@dataclass(frozen=True)
class BrokerUser:
    """The desired state of one service's broker user. ``repr`` hides the password."""

    username: str
    password: str = field(repr=False)
    permissions: Permissions
    topic: TopicPermissions
    limits: UserLimits


def _alternatives(names: Iterable[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(set(names)))


def rights_for(
    *,
    cluster: str,
    namespace: str,
    exchange: str,
    subscriptions: Iterable[str],
    published: Iterable[str],
    service: str = "",
) -> tuple[Permissions, TopicPermissions]:
    """The permissions of a service with these subscriptions (names) publishing these event types.

    read: its subscriptions' queues with their DLQ and the delay queues of older releases (consume,
    get, purge; a passive declare needs no permission); write: the events exchange if it publishes
    anything, the default exchange if it consumes (dead letters go to its own DLQ through it), its
    cluster's delay exchanges if it consumes (its retries go there, routed by its queue's name: the
    sidecar refuses a retry of another user's, :mod:`rabbitsync.topology.delays`), and the trace
    exchange if either (outcome records, :mod:`rabbitsync.topology.trace`); read also ``service``'s
    backfill request queue if it publishes; topic write: its declared types' keys, each optionally
    addressed to one queue (snapshots); configure: nothing, the operator declares, binds and deletes
    everything. Binding needs read on the events exchange, which nobody but the operator has.
    """
    queues = [naming.queue_name(cluster, namespace, s) for s in subscriptions]
    own = f"({_alternatives(queues)})(\\.retry\\.[0-9]+ms|\\.dlq)?" if queues else ""
    types = sorted(set(published))
    if types and service:  # a publisher takes backfill requests from its own queue
        requests = re.escape(naming.backfill_request_queue(cluster, namespace, service))
        own = f"(?:{own}|{requests})" if own else requests
    writable = [re.escape(exchange)] if types else []
    if own:
        writable.append(re.escape(DEFAULT_EXCHANGE_RESOURCE))
    if queues:  # every delay of the cluster: a schedule change must not wait for the rights to follow it
        writable.append(naming.delay_names_pattern(cluster))
    if writable:  # outcome records for `rabbitsync trace`: that exchange routes only to its stream
        writable.append(re.escape(trace_name(exchange)))
    permissions = Permissions(
        configure=NOTHING,
        write=f"^({'|'.join(writable)})$" if writable else NOTHING,
        read=f"^{own}$" if own else NOTHING,
    )
    keys = _alternatives(routing_key(namespace, t) for t in types)
    # The optional tail is a snapshot addressed to one queue (conventions.backfill_routing_key): the
    # type is still one of the declared ones, only the target is added.
    backfill = re.escape(f".{BACKFILL_MARK}.")
    topic = TopicPermissions(exchange=exchange, write=f"^({keys})({backfill}.+)?$" if keys else NOTHING, read=NOTHING)
    return permissions, topic
