"""The vocabulary of broker topology: queues, bindings, and a subscription's whole topology.

Plain frozen values shared by the pure planner (``desired``, ``diff``) and the broker I/O (``amqp``),
so neither depends on the other's types, and neither knows about pika.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class QueueRole(StrEnum):
    MAIN = "main"
    RETRY = "retry"
    """A delay queue, shared by the cluster's subscriptions (:mod:`rabbitsync.topology.delays`)."""
    DEAD_LETTER = "dead-letter"
    ORPHANED_RETRIES = "orphaned-retries"
    """Shared too: where retries whose subscription is gone are kept instead of blocking the others."""

    @property
    def shared(self) -> bool:
        """Declared for every subscription that needs it, owned by none: never deleted by one."""
        return self in (QueueRole.RETRY, QueueRole.ORPHANED_RETRIES)


@dataclass(frozen=True)
class Queue:
    """A durable queue with the arguments it must be declared with."""

    name: str
    role: QueueRole
    arguments: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"queue {self.name}"


@dataclass(frozen=True)
class Exchange:
    """A durable exchange other than the shared events exchange, with the arguments it must have."""

    name: str
    type: str
    arguments: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"exchange {self.name}"


@dataclass(frozen=True, order=True)
class Binding:
    """``exchange`` routes messages with ``routing_key`` to ``queue``."""

    exchange: str
    queue: str
    routing_key: str

    def describe(self) -> str:
        return f"binding {self.exchange} -> {self.queue} ({self.routing_key})"


@dataclass(frozen=True)
class Policy:
    """A RabbitMQ policy on queues or exchanges: what can change on an existing one, unlike its arguments."""

    name: str
    pattern: str
    definition: Mapping[str, Any]
    priority: int = 0
    apply_to: str = "queues"

    def describe(self) -> str:
        return f"policy {self.name} {dict(self.definition)}"


@dataclass(frozen=True)
class Topology:
    """Everything one subscription in one cluster owns on the broker, plus the exchange it binds to and
    the shared objects its retries go through (queues whose role is ``shared``, and ``exchanges``)."""

    exchange: str
    queues: tuple[Queue, ...]
    bindings: frozenset[Binding]
    exchanges: tuple[Exchange, ...] = ()

    @property
    def main_queue(self) -> Queue:
        return next(q for q in self.queues if q.role is QueueRole.MAIN)

    @property
    def dead_letter_queue(self) -> Queue:
        return next(q for q in self.queues if q.role is QueueRole.DEAD_LETTER)

    @property
    def retry_queues(self) -> tuple[Queue, ...]:
        return tuple(q for q in self.queues if q.role is QueueRole.RETRY)

    @property
    def shared_queues(self) -> tuple[Queue, ...]:
        return tuple(q for q in self.queues if q.role.shared)


@dataclass(frozen=True)
class ObservedQueue:
    """A queue as the broker reports it."""

    name: str
    arguments: Mapping[str, Any]
    messages: int = 0
    consumers: int = 0
    dead_lettering: int = 0
    """Messages expired or rejected but not yet confirmed by their dead-letter target (a quorum queue's
    at-least-once dead lettering keeps them apart: ``messages`` does not count them)."""

    @property
    def empty(self) -> bool:
        """Nothing in it, counting what still waits to be dead-lettered out of it."""
        return not (self.messages or self.dead_lettering)


@dataclass(frozen=True)
class ObservedExchange:
    name: str
    type: str
    durable: bool
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Observed:
    """What the broker holds of one subscription: its queues and every binding *to* them.

    Only queues named after the subscription's main queue are listed, plus the shared ones its
    topology names, and only bindings whose destination is one of them (the implicit default-exchange
    bindings left out), so planning from it can never touch another subscription's or another
    cluster's objects.
    """

    exchange: ObservedExchange | None
    queues: Mapping[str, ObservedQueue]
    bindings: frozenset[Binding]
    exchanges: Mapping[str, ObservedExchange] = field(default_factory=dict)
    """The shared exchanges the topology names (``Topology.exchanges``) that exist."""
    policies: Mapping[str, Policy] = field(default_factory=dict)
    """The policy named after the main queue, if it exists (other policies are not ours to look at)."""
