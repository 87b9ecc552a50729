"""One reconcile of a subscription's topology: observe, diff, apply, verify. What the controller calls.

"Ready" must mean *verified on the broker*, not "the last call returned": after applying, the
topology is observed again and diffed once more. Everything the controller needs for status, Events and
conditions comes back in one ``SyncResult``; turning it into a status is the operator's job.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rabbitsync.amqp.port import Broker
from rabbitsync.topology.diff import EXCHANGE_TYPE, Plan, diff, teardown
from rabbitsync.topology.model import Observed, Topology
from rabbitsync.transport.errors import PreconditionFailed


@dataclass(frozen=True)
class SyncResult:
    """The outcome of ``observe_and_sync``. Raises happen instead of a result on broker errors."""

    topology: Topology
    changes: tuple[str, ...]
    """Every operation carried out, one line each ("declared queue ...", "bound binding ...")."""
    drift: tuple[str, ...]
    """The changes that repaired objects removed or added out of band (only when previously synced)."""
    conflicts: tuple[str, ...]
    """Objects on the broker that differ from the spec in a way no reconcile can fix (e.g. arguments)."""
    kept_not_empty: tuple[str, ...]
    """Obsolete delay queues not deleted because they still hold messages (or wait to dead-letter some)."""
    retiring: tuple[str, ...]
    """Obsolete delay queues not deleted because the service may still publish into them."""
    verified: bool
    """Re-observed after the changes: everything desired exists as desired, nothing extra is bound."""
    queue_depth: int
    consumers: int
    dead_lettered: int


def observe_and_sync(
    broker: Broker,
    desired: Topology,
    *,
    previously_synced: bool = False,
    retire: bool = True,
    obsolete_queues: bool = True,
) -> SyncResult:
    """Make the broker hold ``desired``, verify it, and report what was done.

    ``previously_synced``: the caller had verified this same spec generation before; anything repaired
    now was then changed out of band, and is reported as ``drift``. ``retire``: no publisher can still
    use a delay queue the schedule dropped (the caller checked the service's rollout), so an empty one
    may go; otherwise every obsolete delay queue stays. ``obsolete_queues``: look for delay queues
    the schedule dropped (the caller knows there can be none when this generation was verified and
    none was left). That lists the vhost's queues, so it is done only if the main queue exists (a
    delay queue left without it has nowhere to return its messages: a subscription new on the broker
    has nothing to retire); the desired queues are looked up by name, at a cost that does not grow
    with the broker, and so is everything the verification looks at. Raises ``BrokerError`` subclasses.
    """
    main = desired.main_queue.name
    own = [q.name for q in desired.queues if not q.role.shared]
    shared = [q.name for q in desired.shared_queues]
    exchanges = [e.name for e in desired.exchanges]
    observed = broker.observe(desired.exchange, main, own, shared=shared, exchanges=exchanges)
    if obsolete_queues and main in observed.queues:
        observed = broker.observe(desired.exchange, main, shared=shared, exchanges=exchanges)
    plan, retiring, waiting = _withhold_retirements(diff(desired, observed), observed, retire=retire)
    kept: tuple[str, ...] = ()
    if not plan.empty:
        kept = broker.apply(plan).kept_not_empty
        observed = broker.observe(desired.exchange, main, own, shared=shared, exchanges=exchanges)
    remaining = diff(desired, observed)
    unfinished = remaining.repairs or remaining.put_policies or remaining.delete_policies
    return SyncResult(
        topology=desired,
        changes=tuple(plan.describe()),
        # Deleting an obsolete delay queue follows a spec change, never an out-of-band one.
        drift=tuple(plan.describe(deletions=False)) if previously_synced else (),
        conflicts=tuple(c.describe() for c in remaining.conflicts),
        kept_not_empty=(*waiting, *kept),
        retiring=retiring,
        verified=not unfinished and not remaining.conflicts,
        **_live_consumers(broker, desired, observed, counts(desired, observed)),
    )


def _live_consumers(broker: Broker, desired: Topology, observed: Observed, found: dict[str, int]) -> dict[str, int]:
    """``found`` with the main queue's consumers asked of the queue when the statistics say none: the
    statistics are emitted every few seconds (later on a busy broker), so right after a sidecar
    attached they still say 0, and the subscription would wait a retry for a consumer it has."""
    if found["consumers"] or desired.main_queue.name not in observed.queues:
        return found
    return {**found, "consumers": broker.consumers(desired.main_queue.name) or 0}


def _withhold_retirements(
    plan: Plan, observed: Observed, *, retire: bool
) -> tuple[Plan, tuple[str, ...], tuple[str, ...]]:
    """The plan without the deletions that are not safe yet; and which were withheld: (retiring, not empty).

    The broker-side check right before the delete (a passive declare) counts ready messages only; the
    management API also counts messages a quorum queue expired and still has to dead-letter: a delay
    queue holding only those looks empty to AMQP, and deleting it would drop them.
    """
    if not plan.delete_queues:
        return plan, (), ()
    if not retire:
        return replace(plan, delete_queues=()), tuple(d.name for d in plan.delete_queues), ()
    busy = {d.name for d in plan.delete_queues if d.name in observed.queues and not observed.queues[d.name].empty}
    kept = tuple(d for d in plan.delete_queues if d.name not in busy)
    return replace(plan, delete_queues=kept), (), tuple(sorted(busy))


# A queue name no subscription can have (names are DNS labels): observing it lists no queues, only the exchange.
_NO_QUEUE = "rabbitsync.~broker-check"


def ensure_exchange(broker: Broker, exchange: str) -> str:
    """Check the broker over both the management API and AMQP, declaring the shared exchange if missing.

    Returns what was found or done, for the SyncBroker's status. Raises ``BrokerError`` subclasses;
    an existing exchange of another type is a ``PreconditionFailed``, never redeclared.
    """
    observed = broker.observe(exchange, _NO_QUEUE)
    if observed.exchange is None:
        broker.apply(Plan(declare_exchange=exchange))
        return f"declared exchange {exchange}"
    if observed.exchange.type != EXCHANGE_TYPE or not observed.exchange.durable:
        raise PreconditionFailed(
            f"exchange {exchange} is {observed.exchange.type} (durable={observed.exchange.durable}), "
            f"not a durable {EXCHANGE_TYPE} exchange"
        )
    return f"exchange {exchange} present"


def delete_topology(broker: Broker, desired: Topology) -> tuple[str, ...]:
    """Delete the subscription's queues, messages included; the shared exchange stays.

    Returns what was deleted. Raises ``BrokerError`` subclasses (the caller decides whether to give up).
    """
    plan = teardown(broker.observe(desired.exchange, desired.main_queue.name))
    broker.apply(plan)
    return tuple(plan.describe())


def counts(desired: Topology, observed: Observed) -> dict[str, int]:
    """The main queue's depth and consumers and the DLQ's depth, as ``SyncResult`` fields."""
    main = observed.queues.get(desired.main_queue.name)
    dlq = observed.queues.get(desired.dead_letter_queue.name)
    return {
        "queue_depth": main.messages if main else 0,
        "consumers": main.consumers if main else 0,
        "dead_lettered": dlq.messages if dlq else 0,
    }
