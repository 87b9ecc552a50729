"""Reconciling one SyncBroker or ClusterSyncBroker: can this cluster reach the broker, does it hold the exchange?

The SyncBroker's own status answers "is the broker fine?" once, instead of every subscription that
uses it repeating the diagnosis. The shared exchange is declared here if missing (never deleted),
and given its alternate exchange by policy (:mod:`rabbitsync.topology.unroutable`); the cluster name is
claimed (``clusterclaim``): another cluster using the same name is reported here.
Its spec is read through the port, as a subscription reads it, and failures become conditions through
the same table as a subscription's (``failures``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from rabbitsync.amqp.sync import ensure_exchange
from rabbitsync.operator import failures
from rabbitsync.operator import status as st
from rabbitsync.operator.clusterclaim import check_claim, ready
from rabbitsync.operator.kube import Cluster, KubeError
from rabbitsync.operator.orphans import OrphanCollector
from rabbitsync.operator.outcome import ObjectView, ReconcileOutcome, conclude
from rabbitsync.operator.references import (
    BrokerFactory,
    MissingReference,
    resolve_broker,
    resolve_cluster_broker,
)
from rabbitsync.operator.settings import OperatorSettings
from rabbitsync.topology.trace import trace_plan
from rabbitsync.topology.unroutable import unroutable_for
from rabbitsync.transport.errors import BrokerError


def reconcile_broker(
    obj: ObjectView,
    cluster: Cluster,
    brokers: BrokerFactory,
    now: datetime | None = None,
    *,
    operator_namespace: str | None = None,
    settings: OperatorSettings | None = None,
    orphans: OrphanCollector | None = None,
) -> ReconcileOutcome:
    """A SyncBroker's reconcile; with ``operator_namespace``, that of the ClusterSyncBroker ``obj.name``,
    whose Secrets live there. With ``settings`` naming an install id, the cluster name is claimed too;
    with ``orphans``, the orphaned queues on the broker are collected."""
    now = now or datetime.now(UTC)
    try:
        if operator_namespace is None:
            resolved = resolve_broker(cluster, obj.namespace, obj.name, cluster_fallback=False)
        else:
            resolved = resolve_cluster_broker(cluster, obj.name, operator_namespace)
        broker = brokers(resolved)
        message = ensure_exchange(broker, resolved.exchange)
        message += "; " + broker.keep_unroutable(unroutable_for(resolved.exchange))
        broker.apply(trace_plan(resolved.exchange))  # the stream `rabbitsync trace` reads
        claim = None
        if settings is not None and settings.install_id:
            claim = check_claim(broker, settings.cluster, settings.install_id, resolved.endpoint.vhost)
    except (MissingReference, KubeError, BrokerError) as e:
        diagnosis = failures.for_broker(e, str(e))
        return conclude(obj, diagnosis.observations, now=now, temporary_failure=diagnosis.temporary_failure)
    observations = [failures.reachable(resolved.endpoint.host), *([claim] if claim else []), ready(claim, message)]
    notes: list[st.Note] = []
    if orphans is not None:
        where = f"{resolved.endpoint.host}/{resolved.endpoint.vhost}"
        try:
            sweep = orphans.sweep(broker, where, cluster.subscription_names(), time.monotonic())
        except BrokerError as e:
            notes.append(st.Note("Warning", "OrphanSweepFailed", f"looking for orphaned queues: {e}"))
        else:
            observations.append(_orphans_observation(sweep.orphans, orphans.grace_seconds))
            notes += _orphan_notes(sweep.new, sweep.removed, orphans.grace_seconds)
    return conclude(obj, observations, now=now, notes=notes)


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
