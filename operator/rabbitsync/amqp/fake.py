"""An in-memory broker with RabbitMQ's rules, for unit tests of reconciliation (ours and the controller's).

It refuses what RabbitMQ refuses (406 on a redeclare of a queue or an exchange with another type or
other arguments, 404 on a binding to something missing) so tests cannot pass on behaviour the real
broker would reject, and keeps a non-empty queue whose deletion asks for emptiness, as the real
adapter does (it checks with a passive declare: quorum queues refuse ``if-empty`` deletes). Tests
reach into ``exchanges``/``queues``/``bindings`` to simulate drift. Users are kept whole (``users``),
as the management API stores them.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from rabbitsync.amqp.claim import ClusterClaim
from rabbitsync.amqp.identity import BrokerUser
from rabbitsync.amqp.port import ApplyOutcome
from rabbitsync.amqp.snapshot import BrokerSnapshot
from rabbitsync.amqp.unroutable import in_effect
from rabbitsync.topology import naming
from rabbitsync.topology.diff import Plan
from rabbitsync.topology.model import Binding, Observed, ObservedExchange, ObservedQueue, Policy
from rabbitsync.topology.unroutable import ALTERNATE_EXCHANGE_TYPE, UnroutableTopology
from rabbitsync.transport.errors import BrokerUnreachable, NotFound, PreconditionFailed


@dataclass(frozen=True)
class FakeExchange:
    type: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass
class FakeQueue:
    arguments: dict[str, Any]
    messages: int = 0
    consumers: int = 0
    dead_lettering: int = 0
    reported_consumers: int | None = None
    """What the management API's statistics report when they lag behind ``consumers`` (None: they do not)."""

    def reported(self) -> int:
        return self.consumers if self.reported_consumers is None else self.reported_consumers


@dataclass
class FakeBroker:
    exchanges: dict[str, FakeExchange] = field(default_factory=dict)
    queues: dict[str, FakeQueue] = field(default_factory=dict)
    bindings: set[Binding] = field(default_factory=set)
    reachable: bool = True
    snapshots: int = 0
    """How many times ``snapshot`` listed everything, for asserting one listing per sweep."""
    observations: int = 0
    """How many times ``observe`` was called."""
    listings: int = 0
    """How many of those looked for every queue named after the subscription (no ``queues`` given)."""
    applied: list[Plan] = field(default_factory=list)
    """Every plan ``apply`` was called with, for asserting that nothing was done."""
    users: dict[str, BrokerUser] = field(default_factory=dict)
    """Service users by name, as last put."""
    policies: dict[str, Policy] = field(default_factory=dict)
    """Policies by name, as last put."""
    claims: dict[str, ClusterClaim] = field(default_factory=dict)
    """Cluster claims by parameter name; a test puts another install's here to stage a conflict."""
    consumers_on_declare: int = 0
    """Consumers a newly declared queue gets at once: stands in for the running sidecars."""

    def observe(
        self,
        exchange: str,
        main_queue: str,
        queues: Collection[str] | None = None,
        *,
        shared: Collection[str] = (),
        exchanges: Collection[str] = (),
    ) -> Observed:
        self._check_reachable()
        self.observations += 1
        self.listings += queues is None
        pattern = re.compile(naming.owned_queue_pattern(main_queue))
        ours = {
            name: ObservedQueue(name, dict(q.arguments), q.messages, q.reported(), q.dead_lettering)
            for name, q in self.queues.items()
            if name in shared or (pattern.match(name) if queues is None else name in queues)
        }
        return Observed(
            exchange=self._observed_exchange(exchange),
            queues=ours,
            bindings=frozenset(b for b in self.bindings if b.queue in ours),
            exchanges={name: seen for name in exchanges if (seen := self._observed_exchange(name))},
            policies={main_queue: self.policies[main_queue]} if main_queue in self.policies else {},
        )

    def _observed_exchange(self, name: str) -> ObservedExchange | None:
        found = self.exchanges.get(name)
        return ObservedExchange(name, found.type, True, dict(found.arguments)) if found else None

    def snapshot(self) -> BrokerSnapshot:
        self._check_reachable()
        self.snapshots += 1
        return BrokerSnapshot(
            exchanges={
                name: ObservedExchange(name, e.type, True, dict(e.arguments)) for name, e in self.exchanges.items()
            },
            queues=[
                ObservedQueue(name, dict(q.arguments), q.messages, q.reported(), q.dead_lettering)
                for name, q in self.queues.items()
            ],
            bindings=set(self.bindings),
            policies=dict(self.policies),
        )

    def apply(self, plan: Plan) -> ApplyOutcome:
        self._check_reachable()
        self.applied.append(plan)
        if plan.declare_exchange:
            self._declare_exchange(plan.declare_exchange, FakeExchange("topic"))
        for exchange in plan.declare_exchanges:
            self._declare_exchange(exchange.name, FakeExchange(exchange.type, dict(exchange.arguments)))
        for queue in plan.declare_queues:
            existing = self.queues.setdefault(
                queue.name, FakeQueue(dict(queue.arguments), consumers=self.consumers_on_declare)
            )
            if existing.arguments != dict(queue.arguments):
                raise PreconditionFailed(f"inequivalent arguments for queue {queue.name}")
        for binding in plan.bind:
            if binding.exchange not in self.exchanges or binding.queue not in self.queues:
                raise NotFound(f"no exchange or queue for {binding.describe()}")
            self.bindings.add(binding)
        self.bindings -= set(plan.unbind)
        kept: list[str] = []
        for deletion in plan.delete_queues:
            found = self.queues.get(deletion.name)
            # As the real adapter's passive declare: ready messages only, not those waiting to dead-letter.
            if found is not None and deletion.if_empty and found.messages:
                kept.append(deletion.name)
                continue
            self.queues.pop(deletion.name, None)
            self.bindings = {b for b in self.bindings if b.queue != deletion.name}
        self.policies.update({p.name: p for p in plan.put_policies})
        for name in plan.delete_policies:
            self.policies.pop(name, None)
        return ApplyOutcome(kept_not_empty=tuple(kept))

    def _declare_exchange(self, name: str, exchange: FakeExchange) -> None:
        existing = self.exchanges.setdefault(name, exchange)
        if existing != exchange:
            raise PreconditionFailed(f"exchange {name} is {existing}, not {exchange}")

    def consumers(self, queue: str) -> int | None:
        self._check_reachable()
        found = self.queues.get(queue)
        return None if found is None else found.consumers

    def keep_unroutable(self, spec: UnroutableTopology) -> str:
        self._check_reachable()
        self._declare_exchange(spec.alternate_exchange, FakeExchange(ALTERNATE_EXCHANGE_TYPE))
        self.queues.setdefault(spec.queue, FakeQueue(dict(spec.queue_arguments)))
        self.policies[spec.policy] = spec.as_policy()
        return in_effect(spec, spec.policy)

    def put_user(self, user: BrokerUser) -> None:
        self._check_reachable()
        self.users[user.username] = user

    def delete_user(self, username: str) -> bool:
        self._check_reachable()
        return self.users.pop(username, None) is not None

    def claim_cluster(self, claim: ClusterClaim) -> ClusterClaim:
        self._check_reachable()
        return self.claims.setdefault(claim.parameter_name, claim)

    def _check_reachable(self) -> None:
        if not self.reachable:
            raise BrokerUnreachable("fake broker is down")
