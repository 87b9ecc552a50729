"""Plan the broker changes that turn what is observed into what is desired. Pure: no I/O.

Rules, each a promise of the product:
- the shared exchange is declared when missing and never deleted; so are the objects the cluster's
  subscriptions share for their retries (:mod:`rabbitsync.topology.delays`), whose arguments are
  compared like a queue's;
- missing queues are declared, missing bindings bound, and bindings to *our* queues that are not
  desired (an event removed, an old exchange) unbound: exactly the difference;
- delay queues of the subscription's own (``naming.retry_queue_name``: older releases declared
  them) are not desired any more and are deleted only if empty (checked with a passive declare
  right before the delete: quorum queues refuse ``if-empty`` deletes);
- a queue whose arguments differ from the desired ones is reported as a conflict and left alone:
  RabbitMQ cannot change arguments in place, and redeclaring would fail with 406. The one exception
  is the delivery limit, which a policy named after the main queue adjusts where the argument cannot
  (``delivery_limit.limit_policy``): put when needed and missing or different, deleted when no longer
  needed, and with the subscription.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rabbitsync.topology import naming
from rabbitsync.topology.delivery_limit import ARGUMENT as DELIVERY_LIMIT
from rabbitsync.topology.delivery_limit import limit_policy
from rabbitsync.topology.model import Binding, Exchange, Observed, Policy, Queue, Topology

EXCHANGE_TYPE = "topic"


@dataclass(frozen=True)
class QueueDeletion:
    name: str
    if_empty: bool

    def describe(self) -> str:
        return f"queue {self.name}"


@dataclass(frozen=True)
class Conflict:
    """An object on the broker that differs from the desired one in a way no plan can fix in place."""

    name: str
    desired: Mapping[str, Any]
    observed: Mapping[str, Any]

    def describe(self) -> str:
        return f"{self.name}: broker has {dict(self.observed)}, spec wants {dict(self.desired)}"


@dataclass(frozen=True)
class Plan:
    """Broker operations in the order they must run: declare, bind, unbind, delete."""

    declare_exchange: str | None = None
    declare_exchanges: tuple[Exchange, ...] = ()
    """Shared exchanges other than the events exchange, declared before the queues that dead-letter into them."""
    declare_queues: tuple[Queue, ...] = ()
    bind: tuple[Binding, ...] = ()
    unbind: tuple[Binding, ...] = ()
    delete_queues: tuple[QueueDeletion, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    put_policies: tuple[Policy, ...] = ()
    delete_policies: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing to do (conflicts are reported, not acted on)."""
        return not (self.amqp_work or self.put_policies or self.delete_policies)

    @property
    def amqp_work(self) -> bool:
        """Something to do over AMQP (policies go over the management API)."""
        return self.repairs or bool(self.delete_queues)

    @property
    def repairs(self) -> bool:
        """Something desired is missing or something not desired is bound (obsolete delay queues aside)."""
        return bool(self.declare_exchange or self.declare_exchanges or self.declare_queues or self.bind or self.unbind)

    def describe(self, *, deletions: bool = True) -> list[str]:
        """One line per operation, for Events and logs; ``deletions=False`` leaves queue deletions out."""
        lines = [f"declared exchange {self.declare_exchange}"] if self.declare_exchange else []
        lines += [f"declared {e.describe()}" for e in self.declare_exchanges]
        lines += [f"declared {q.describe()}" for q in self.declare_queues]
        lines += [f"bound {b.describe()}" for b in self.bind]
        lines += [f"unbound {b.describe()}" for b in self.unbind]
        lines += [f"set {p.describe()}" for p in self.put_policies]
        if deletions:
            lines += [f"deleted policy {name}" for name in self.delete_policies]
            lines += [f"deleted {d.describe()}" for d in self.delete_queues]
        return lines


def diff(desired: Topology, observed: Observed) -> Plan:
    """The plan that makes ``observed`` match ``desired``."""
    conflicts: list[Conflict] = []
    declare_exchange = None
    if observed.exchange is None:
        declare_exchange = desired.exchange
    elif (observed.exchange.type, observed.exchange.durable) != (EXCHANGE_TYPE, True):
        conflicts.append(
            Conflict(
                f"exchange {desired.exchange}",
                {"type": EXCHANGE_TYPE, "durable": True},
                {"type": observed.exchange.type, "durable": observed.exchange.durable},
            )
        )

    declare_exchanges: list[Exchange] = []
    for exchange in desired.exchanges:
        seen = observed.exchanges.get(exchange.name)
        if seen is None:
            declare_exchanges.append(exchange)
        elif (seen.type, seen.durable, dict(seen.arguments)) != (exchange.type, True, dict(exchange.arguments)):
            conflicts.append(
                Conflict(
                    exchange.describe(),
                    {"type": exchange.type, "durable": True, "arguments": dict(exchange.arguments)},
                    {"type": seen.type, "durable": seen.durable, "arguments": dict(seen.arguments)},
                )
            )

    declare: list[Queue] = []
    for queue in desired.queues:
        found = observed.queues.get(queue.name)
        if found is None:
            declare.append(queue)
        elif _fixed(found.arguments) != _fixed(queue.arguments):
            conflicts.append(Conflict(f"queue {queue.name}", queue.arguments, found.arguments))

    wanted = {q.name for q in desired.queues}
    obsolete = tuple(
        QueueDeletion(name, if_empty=True)
        for name in sorted(observed.queues)
        if name not in wanted and _is_retry_queue(desired, name)
    )
    put_policies, delete_policies = _policies(desired, observed, conflicts)
    return Plan(
        declare_exchange=declare_exchange,
        declare_exchanges=tuple(declare_exchanges),
        declare_queues=tuple(declare),
        bind=tuple(sorted(desired.bindings - observed.bindings)),
        unbind=tuple(sorted(observed.bindings - desired.bindings)),
        delete_queues=obsolete,
        conflicts=tuple(conflicts),
        put_policies=put_policies,
        delete_policies=delete_policies,
    )


def teardown(observed: Observed) -> Plan:
    """Delete every queue of the subscription, messages included (``deletionPolicy: delete``).

    Bindings go with their queues; the shared exchange stays, and so do the queues the cluster's
    subscriptions share, should ``observed`` hold any.
    """
    return Plan(
        delete_queues=tuple(
            QueueDeletion(name, if_empty=False)
            for name in sorted(observed.queues)
            if not naming.shared_by_cluster(name)
        ),
        delete_policies=tuple(sorted(observed.policies)),
    )


def _fixed(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments a queue must have been declared with; the delivery limit may differ (a policy adjusts it)."""
    return {key: value for key, value in arguments.items() if key != DELIVERY_LIMIT}


def _policies(
    desired: Topology, observed: Observed, conflicts: list[Conflict]
) -> tuple[tuple[Policy, ...], tuple[str, ...]]:
    """The main queue's delivery-limit policy to put, and the policies to delete (``observed`` lists only it).

    A queue not declared yet gets the limit as an argument, so any policy of its name is stale; a queue
    in conflict is left alone altogether.
    """
    main = desired.main_queue
    if any(c.name == f"queue {main.name}" for c in conflicts):
        return (), ()
    found = observed.queues.get(main.name)
    policy = None
    if found is not None:
        policy = limit_policy(main.name, main.arguments.get(DELIVERY_LIMIT), found.arguments.get(DELIVERY_LIMIT))
    put = (policy,) if policy and observed.policies.get(policy.name) != policy else ()
    stale = tuple(sorted(name for name in observed.policies if not policy or name != policy.name))
    return put, stale


def _is_retry_queue(desired: Topology, name: str) -> bool:
    return name.startswith(f"{desired.main_queue.name}.retry.")
