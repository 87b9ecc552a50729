"""Sweep-based drift detection: one broker listing per sweep checks every subscription on that broker.

Resyncing each SyncSubscription on its own timer made 1,200 objects cost 40 reconciles a second,
each observing the broker over several management calls (issue 11). Instead, each SyncBroker and
ClusterSyncBroker sweeps its broker in its own resync (``brokers.reconcile_broker``), every resync
interval: one ``Broker.snapshot`` (four listings, whatever the number of subscriptions; the orphan
collector reads the same one), then every subscription whose current generation was verified there
is diffed against it in memory. Only the drifted ones are reconciled again, by
asking kopf through an annotation on them (``DRIFT_ANNOTATION``, whose change runs the same
reconcile as a spec change), so the repair, its status, conditions and Events stay the per-object
handler's, and a broker with nothing changed costs no reconcile at all.

The same listing keeps the status counts fresh (queue depth, consumers, dead-lettered): a
subscription whose counts differ from the listing's is reconciled too, so an idle broker costs
nothing and only queues that moved cost a reconcile. Subscriptions not verified yet are not the
sweep's: their own retries (capped, jittered) carry them. A snapshot is a few seconds old at worst;
a false alarm costs one reconcile that finds nothing to do.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from rabbitsync.amqp.snapshot import BrokerSnapshot
from rabbitsync.amqp.sync import counts
from rabbitsync.operator.kube import KubeError
from rabbitsync.operator.kube.indexes import BrokerIndex
from rabbitsync.operator.outcome import ObjectView
from rabbitsync.operator.settings import OperatorSettings
from rabbitsync.operator.subscription import Subscription, topology_for
from rabbitsync.topology.diff import diff
from rabbitsync.topology.model import Observed, Topology
from rabbitsync.transport.errors import BrokerError

log = logging.getLogger(__name__)

SYNCED_BY_BROKER = "rabbitsync_synced_subscriptions_by_broker"
"""Index id (and handler kwarg): SyncSubscriptions verified at their current generation, by ``spec.broker``."""

DRIFT_ANNOTATION = "sweep.rabbitsync.io/drift-detected"
"""Set to the sweep's time on a drifted subscription. Outside the ``rabbitsync.io/`` prefix on purpose:
kopf leaves its own storage prefix out of the changes it reacts to."""

COUNTS = ("queueDepth", "consumers", "deadLettered")
"""The status fields the listing also answers (``subscription.status_fields``)."""

SyncedIndex = Mapping[str, Collection[Subscription]]
RequestRepair = Callable[[str, str], None]
"""Ask for one subscription (namespace, name) to be reconciled again."""


def synced_by_broker(body: Mapping[str, Any], **_: Any) -> dict[str, Subscription]:
    """kopf index function: the subscription under its broker's name, if its generation was verified."""
    meta, spec = body["metadata"], body.get("spec") or {}
    sub = Subscription.from_body(meta["namespace"], meta["name"], meta, spec, body.get("status") or {})
    broker = spec.get("broker")
    if meta.get("deletionTimestamp") or not isinstance(broker, str) or not sub.previously_synced():
        return {}
    # Detached from kopf's body (the index outlives the event); of the status only the counts are compared.
    kept = {key: sub.status[key] for key in COUNTS if key in sub.status}
    return {
        broker: Subscription(
            namespace=sub.namespace,
            name=sub.name,
            generation=sub.generation,
            status=kept,
            raw_spec=copy.deepcopy(dict(spec)),
            uid=sub.uid,
        )
    }


def candidates(synced: SyncedIndex, sync_brokers: BrokerIndex, broker: ObjectView) -> list[Subscription]:
    """The verified subscriptions that use ``broker``: a SyncBroker's of its namespace; a
    ClusterSyncBroker's of every namespace without a SyncBroker of that name (which would win)."""
    found = synced.get(broker.name, ())
    if broker.namespace:
        return [s for s in found if s.namespace == broker.namespace]
    return [s for s in found if (s.namespace, broker.name) not in sync_brokers]


def as_last_written(
    subscriptions: Iterable[Subscription], written: Callable[[str], Mapping[str, Any] | None]
) -> list[Subscription]:
    """``subscriptions`` with the status this process last ``written`` for them, where it wrote one.

    The index holds the status of the last watch event kopf processed, which lags behind the
    operator's own patches under load: at 1,000 subscriptions a third of them were asked for a
    reconcile at every sweep, for counts their status no longer had. One whose last written status
    is not verified at its generation any more (its broker failed since) is not the sweep's.
    """
    current = []
    for sub in subscriptions:
        status = written(sub.uid) if sub.uid else None
        if status is None:
            current.append(sub)
        elif (latest := replace(sub, status=status)).previously_synced():
            current.append(latest)
    return current


@dataclass(frozen=True)
class SweepResult:
    checked: int
    drifted: tuple[tuple[str, str], ...]
    """(namespace, name) of every subscription whose topology differs from the listing."""
    stale: tuple[tuple[str, str], ...] = ()
    """(namespace, name) of every subscription whose status counts differ from the listing's."""

    @property
    def to_reconcile(self) -> tuple[tuple[str, str], ...]:
        return self.drifted + self.stale


def drifted(
    snapshot: BrokerSnapshot, subscriptions: Iterable[Subscription], settings: OperatorSettings, exchange: str
) -> SweepResult:
    """Compare every subscription's desired topology and status counts with one listing. Pure."""
    checked, found, stale = 0, [], []
    for sub in subscriptions:
        try:
            topology = topology_for(settings, sub, sub.spec(), exchange)
        except KubeError:  # a spec the model refuses was never verified: not the sweep's
            continue
        checked += 1
        observed = snapshot.observed_for(
            topology.exchange,
            topology.main_queue.name,
            shared=[q.name for q in topology.shared_queues],
            exchanges=[e.name for e in topology.exchanges],
        )
        plan = diff(topology, observed)
        # Obsolete delay queues still holding messages are kept on purpose: not drift.
        if plan.repairs:
            found.append((sub.namespace, sub.name))
        elif _counts(topology, observed) != {key: sub.status.get(key) for key in COUNTS}:
            stale.append((sub.namespace, sub.name))
    return SweepResult(checked, tuple(found), tuple(stale))


def _counts(topology: Topology, observed: Observed) -> dict[str, int]:
    found = counts(topology, observed)
    return {"queueDepth": found["queue_depth"], "consumers": found["consumers"], "deadLettered": found["dead_lettered"]}


@dataclass(frozen=True)
class Candidates:
    """What a sweep of one broker compares with its listing, and how it asks for a reconcile."""

    subscriptions: tuple[Subscription, ...]
    """The verified subscriptions on the broker (``candidates``)."""
    settings: OperatorSettings
    request_repair: RequestRepair


def sweep_listing(listing: BrokerSnapshot, exchange: str, sweep: Candidates, where: str) -> SweepResult:
    """Ask for a reconcile of every candidate whose topology or counts differ from ``listing`` (of ``where``)."""
    result = drifted(listing, sweep.subscriptions, sweep.settings, exchange)
    for namespace, name in result.drifted:
        log.info("drift sweep of %s: %s/%s differs from the broker, reconciling it", where, namespace, name)
    for namespace, name in result.to_reconcile:
        sweep.request_repair(namespace, name)
    return result


def broker_down(sweep: Candidates, where: str, error: BrokerError) -> SweepResult:
    """The broker failed even a declaration: every candidate is asked for a reconcile, once. Each then
    reports the outage in its own conditions, stops being "verified" (so the next sweeps leave it
    alone) and retries on its own jittered backoff until the broker is back."""
    if sweep.subscriptions:
        log.info("drift sweep of %s: broker unreachable (%s), reconciling its subscriptions", where, error)
    result = SweepResult(0, tuple((s.namespace, s.name) for s in sweep.subscriptions))
    for namespace, name in result.drifted:
        sweep.request_repair(namespace, name)
    return result
