"""Reconciling one SyncBroker or ClusterSyncBroker: can this cluster reach the broker, does it hold the exchange?

The SyncBroker's own status answers "is the broker fine?" once, instead of every subscription that
uses it repeating the diagnosis. The shared exchange is declared here if missing (never deleted),
and given its alternate exchange by policy (:mod:`rabbitsync.topology.unroutable`); the cluster name is
claimed (``clusterclaim``): another cluster using the same name is reported here.
Its spec is read through the port, as a subscription reads it, and failures become conditions through
the same table as a subscription's (``failures``). Each resync also lists the broker once, and that one
listing is both the drift sweep's (``drift``) and the orphan collector's (``orphans``): the operator's
broker calls per resync interval do not grow with the number of subscriptions.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from rabbitsync.amqp.port import Broker
from rabbitsync.amqp.sync import ensure_exchange
from rabbitsync.operator import drift, failures
from rabbitsync.operator import status as st
from rabbitsync.operator.clusterclaim import check_claim, ready
from rabbitsync.operator.kube import Cluster, KubeError
from rabbitsync.operator.orphans import OrphanCollector
from rabbitsync.operator.outcome import ObjectView, ReconcileOutcome, conclude
from rabbitsync.operator.references import (
    BrokerFactory,
    MissingReference,
    ResolvedBroker,
    resolve_broker,
    resolve_cluster_broker,
)
from rabbitsync.operator.settings import OperatorSettings
from rabbitsync.topology.trace import trace_plan
from rabbitsync.topology.unroutable import unroutable_for
from rabbitsync.transport.errors import BrokerError

log = logging.getLogger(__name__)


def reconcile_broker(
    obj: ObjectView,
    cluster: Cluster,
    brokers: BrokerFactory,
    now: datetime | None = None,
    *,
    operator_namespace: str | None = None,
    settings: OperatorSettings | None = None,
    orphans: OrphanCollector | None = None,
    sweep: drift.Candidates | None = None,
) -> ReconcileOutcome:
    """A SyncBroker's reconcile; with ``operator_namespace``, that of the ClusterSyncBroker ``obj.name``,
    whose Secrets live there. With ``settings`` naming an install id, the cluster name is claimed too;
    with ``orphans`` and/or ``sweep``, the broker is listed once and that listing serves both the orphan
    collector and the drift sweep of the subscriptions in ``sweep``."""
    now = now or datetime.now(UTC)
    try:
        if operator_namespace is None:
            resolved = resolve_broker(cluster, obj.namespace, obj.name, cluster_fallback=False)
        else:
            resolved = resolve_cluster_broker(cluster, obj.name, operator_namespace)
        broker = brokers(resolved)
    except (MissingReference, KubeError, BrokerError) as e:
        return _failed(obj, e, now)
    try:
        message = ensure_exchange(broker, resolved.exchange)
        message += "; " + broker.keep_unroutable(unroutable_for(resolved.exchange))
        broker.apply(trace_plan(resolved.exchange))  # the stream `rabbitsync trace` reads
        claim = None
        if settings is not None and settings.install_id:
            claim = check_claim(broker, settings.cluster, settings.install_id, resolved.endpoint.vhost)
    except BrokerError as e:
        if sweep is not None and failures.reading(e).reachable != "True":  # down, not merely refusing
            drift.broker_down(sweep, obj.name, e)
        return _failed(obj, e, now)
    observations = [failures.reachable(resolved.endpoint.host), *([claim] if claim else []), ready(claim, message)]
    notes: list[st.Note] = []
    if orphans is not None or sweep is not None:
        found, notes = _look_around(broker, resolved, cluster, obj.name, orphans, sweep)
        observations += found
    return conclude(obj, observations, now=now, notes=notes)


def _failed(obj: ObjectView, error: MissingReference | KubeError | BrokerError, now: datetime) -> ReconcileOutcome:
    diagnosis = failures.for_broker(error, str(error))
    return conclude(obj, diagnosis.observations, now=now, temporary_failure=diagnosis.temporary_failure)


def _look_around(
    broker: Broker,
    resolved: ResolvedBroker,
    cluster: Cluster,
    name: str,
    orphans: OrphanCollector | None,
    sweep: drift.Candidates | None,
) -> tuple[list[st.Observation], list[st.Note]]:
    """One listing of the broker, for the drift sweep and the orphan collector: what they found to report."""
    where = f"{resolved.endpoint.host}/{resolved.endpoint.vhost}"
    try:
        listing = broker.snapshot()
    except BrokerError as e:
        # Slow, not down (it just answered the declarations; a listing of thousands of queues timed out):
        # asking every subscription to reconcile now would only pile more calls on it. The next resync retries.
        log.warning("listing broker %s failed (%s), though it answers otherwise: sweep skipped", where, e)
        return [], [st.Note("Warning", "OrphanSweepFailed", f"listing the broker's queues: {e}")]
    if sweep is not None:
        drift.sweep_listing(listing, resolved.exchange, sweep, name)
    if orphans is None:
        return [], []
    try:
        found = orphans.sweep(listing, broker, where, cluster.subscription_names(), time.monotonic())
    except BrokerError as e:
        return [], [st.Note("Warning", "OrphanSweepFailed", f"removing orphaned queues: {e}")]
    observation = _orphans_observation(found.orphans, orphans.grace_seconds)
    return [observation], _orphan_notes(found.new, found.removed, orphans.grace_seconds)


ORPHANED_QUEUES = "OrphanedQueues"


def _orphans_observation(found: tuple[str, ...], grace: float) -> st.Observation:
    if not found:
        return st.Observation(ORPHANED_QUEUES, "False", "NoOrphans", "every queue of this cluster has its subscription")
    shown = ", ".join(found[:20]) + (f" and {len(found) - 20} more" if len(found) > 20 else "")
    return st.Observation(
        ORPHANED_QUEUES,
        "True",
        "OrphansFound",
        f"{len(found)} queue(s) no SyncSubscription owns, removed after {grace:.0f} s: {shown}",
    )


def _orphan_notes(new: tuple[str, ...], removed: tuple[str, ...], grace: float) -> list[st.Note]:
    notes = []
    if new:
        notes.append(
            st.Note("Warning", "OrphanedQueues", f"no SyncSubscription owns {', '.join(new)}: removed in {grace:.0f} s")
        )
    if removed:
        notes.append(st.Note("Normal", "OrphansRemoved", f"removed orphaned queue(s) {', '.join(removed)}"))
    return notes
