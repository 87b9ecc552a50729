"""Whether a delivered event may be applied: who published it, as the broker vouches, and what it is.

The broker is shared by every service of both clusters, so anything in a message body is a claim.
What is not a claim is the AMQP ``user_id`` property: RabbitMQ refuses (PRECONDITION_FAILED) a publish
whose ``user_id`` differs from the user the connection logged in as, unless that user carries the
``impersonator`` tag, which rabbitsync never grants. Every rabbitsync publisher sets it
(:mod:`rabbitsync.transport.publisher`), and each service has its own broker user, named from its
cluster, namespace and service (:func:`rabbitsync.conventions.broker_username`). So an event is
applied only if all of these hold, checked in this order:

0. it came through the events exchange or, from the sidecar's own user only, through the default
   exchange (``""``: straight into a queue by name; ``default-exchange`` otherwise) or the cluster's
   retries exchange (how a retry comes back; ``foreign-retry`` otherwise), checked before the body
   is even read, by :func:`route`. Both route by a name the publisher chose: publishing to the
   default exchange is one permission for every queue of the vhost, and every service may publish
   into the cluster's delay exchanges, with any routing key, for its own retries. Without this check
   any service could push its own genuine events into our queue, past the bindings that choose
   which types and namespaces reach it and past the topic permissions that choose which types it
   may publish;
1. it has a ``user_id`` (``unauthenticated`` otherwise: anyone could have sent it);
2. that user is the one of the service its ``source`` names (``forged-source`` otherwise);
3. that service is in our own namespace (``foreign-namespace``): the routing keys already keep other
   namespaces out, this catches a message pushed straight into the queue;
4. its type is one the subscription lists (``unsubscribed-type``): the bindings keep other types out,
   this too catches a message pushed straight into the queue.

Anything else is dead-lettered at once with the reason, never retried: no retry changes who sent it.

Retries and replays. A failed delivery goes to a delay queue and comes back through the broker's
dead-lettering, which keeps the properties of the copy *we* published: its ``user_id`` is then the
sidecar's own user, and the original publisher's is gone. So when the sidecar reroutes a message it
writes the publisher it verified into the :data:`PUBLISHER` header, and on delivery that header is
believed only when the message's own ``user_id`` is the sidecar's own user. The broker guarantees
that only holders of this service's credentials can send such a message, that is the service's own
pods, which are the ones deciding anyway. A :data:`PUBLISHER` header on a message from any other
user is ignored, and overwritten with that user on every reroute, so a forger cannot launder a
claim through our retry or dead-letter queues either. ``rabbitsync dead-letters replay`` keeps the
header: run it with the service's own credentials (its ``RABBITSYNC_AMQP_URL``) so that the replayed
events are believed; replayed by another user they are refused again, as ``forged-source``.

A retry comes back from the cluster's shared delay queue through the cluster's retries exchange
(:mod:`rabbitsync.topology.delays`; from a delay queue of an older release, the subscription's own,
through the default exchange), the broker dead-lettering it with the properties of the copy we
published: its ``user_id`` is ours, so it passes :func:`route`. A message someone else put into a
delay exchange, with our queue's name as routing key, keeps *their* ``user_id`` through the
dead-lettering, and is refused as it comes back.

"Own user" is the user of the sidecar's broker URI, not a name derived from its settings: the
sidecar vouches for what it republished itself, whatever name it logs in as.
"""

from __future__ import annotations

from collections.abc import Collection

from rabbitsync.conventions import broker_username
from rabbitsync.events import CloudEvent

UNAUTHENTICATED = "unauthenticated"
FORGED_SOURCE = "forged-source"
FOREIGN_NAMESPACE = "foreign-namespace"
UNSUBSCRIBED_TYPE = "unsubscribed-type"
DEFAULT_EXCHANGE = "default-exchange"
FOREIGN_RETRY = "foreign-retry"


class Untrusted(Exception):
    """The event may not be applied, whatever happens next; ``reason`` is one of the constants above."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def route(exchange: str | None, user_id: str | None, own_user: str, *, retries: str) -> None:
    """Raise :class:`Untrusted` for a delivery that reached the queue by name from anyone but us.

    ``retries`` is the cluster's retries exchange: what comes through it was routed by the name its
    publisher gave, as through the default exchange.
    """
    if exchange == "" and user_id != own_user:
        raise Untrusted(
            DEFAULT_EXCHANGE,
            f"published straight to the queue (default exchange) by {user_id!r}: only events through the "
            "events exchange, or our own retries, are accepted",
        )
    if exchange == retries and user_id != own_user:
        raise Untrusted(
            FOREIGN_RETRY,
            f"put into a delay queue by {user_id!r}, addressed to this queue: only our own retries come "
            f"back through {retries!r}",
        )


def check(event: CloudEvent, publisher: str | None, *, events: Collection[str], namespace: str) -> None:
    """Raise :class:`Untrusted` unless ``event``, sent by ``publisher``, may be applied by a subscriber
    of ``events`` in ``namespace``."""
    origin = event.origin
    if publisher is None:
        raise Untrusted(UNAUTHENTICATED, f"no user_id: nobody vouches that {event.source} sent it")
    expected = broker_username(origin.cluster, origin.namespace, origin.service)
    if publisher != expected:
        raise Untrusted(FORGED_SOURCE, f"published by {publisher!r}, but its source {event.source} is {expected!r}")
    if origin.namespace != namespace:
        raise Untrusted(FOREIGN_NAMESPACE, f"from namespace {origin.namespace!r}, subscribed in {namespace!r}")
    if event.type not in events:
        raise Untrusted(UNSUBSCRIBED_TYPE, f"type {event.type!r} is not one the subscription lists")
