"""Plan the broker changes that turn what is observed into what is desired. Pure: no I/O.

Rules, each a promise of the product:
- the shared exchange is declared when missing and never deleted;
- missing queues are declared, missing bindings bound, and bindings to *our* queues that are not
  desired (an event removed, an old exchange) unbound: exactly the difference;
- delay queues no longer in the schedule are deleted only if empty (checked with a passive declare
  right before the delete: quorum queues refuse ``if-empty`` deletes);
- a queue whose arguments differ from the desired ones is reported as a conflict and left alone:
  RabbitMQ cannot change arguments in place, and redeclaring would fail with 406;
- what must change on existing queues (the delivery limit) is a policy: put when missing or different,
  deleted with the subscription.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rabbitsync.topology.model import Binding, Observed, Policy, Queue, Topology

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
        return bool(self.declare_exchange or self.declare_queues or self.bind or self.unbind or self.delete_queues)

    def describe(self, *, deletions: bool = True) -> list[str]:
        """One line per operation, for Events and logs; ``deletions=False`` leaves queue deletions out."""
        lines = [f"declared exchange {self.declare_exchange}"] if self.declare_exchange else []
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

    declare: list[Queue] = []
    for queue in desired.queues:
        found = observed.queues.get(queue.name)
        if found is None:
            declare.append(queue)
        elif dict(found.arguments) != dict(queue.arguments):
            conflicts.append(Conflict(f"queue {queue.name}", queue.arguments, found.arguments))

    wanted = {q.name for q in desired.queues}
    obsolete = tuple(
        QueueDeletion(name, if_empty=True)
        for name in sorted(observed.queues)
        if name not in wanted and _is_retry_queue(desired, name)
    )
    return Plan(
        declare_exchange=declare_exchange,
        declare_queues=tuple(declare),
        bind=tuple(sorted(desired.bindings - observed.bindings)),
        unbind=tuple(sorted(observed.bindings - desired.bindings)),
        delete_queues=obsolete,
        conflicts=tuple(conflicts),
        # A policy is named after the queue it is for: a queue in conflict is left alone altogether.
        put_policies=tuple(
            p
            for p in desired.policies
            if observed.policies.get(p.name) != p and not any(c.name == f"queue {p.name}" for c in conflicts)
        ),
    )


def teardown(observed: Observed) -> Plan:
    """Delete every queue of the subscription, messages included (``deletionPolicy: delete``).

    Bindings go with their queues; the shared exchange stays.
    """
    return Plan(
        delete_queues=tuple(QueueDeletion(name, if_empty=False) for name in sorted(observed.queues)),
        delete_policies=tuple(sorted(observed.policies)),
    )


def _is_retry_queue(desired: Topology, name: str) -> bool:
    return name.startswith(f"{desired.main_queue.name}.retry.")
