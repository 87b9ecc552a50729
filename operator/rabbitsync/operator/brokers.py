"""Reconciling one SyncBroker or ClusterSyncBroker: can this cluster reach the broker, and does it hold the exchange?

The SyncBroker's own status answers "is the broker fine?" once, instead of every subscription that
uses it repeating the diagnosis. The shared exchange is declared here if missing (never deleted),
and given its alternate exchange by policy (:mod:`rabbitsync.topology.unroutable`); the cluster name is
claimed (``clusterclaim``): another cluster using the same name is reported here.
Its spec is read through the port, as a subscription reads it, and failures become conditions through
the same table as a subscription's (``failures``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from rabbitsync.amqp.sync import ensure_exchange
from rabbitsync.operator import failures
from rabbitsync.operator.clusterclaim import check_claim, ready
from rabbitsync.operator.kube import Cluster, KubeError
from rabbitsync.operator.outcome import ObjectView, ReconcileOutcome, conclude
from rabbitsync.operator.references import (
    BrokerFactory,
    MissingReference,
    resolve_broker,
    resolve_cluster_broker,
)
from rabbitsync.operator.settings import OperatorSettings
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
) -> ReconcileOutcome:
    """A SyncBroker's reconcile; with ``operator_namespace``, that of the ClusterSyncBroker ``obj.name``,
    whose Secrets live there. With ``settings`` naming an install id, the cluster name is claimed too."""
    now = now or datetime.now(UTC)
    try:
        if operator_namespace is None:
            resolved = resolve_broker(cluster, obj.namespace, obj.name, cluster_fallback=False)
        else:
            resolved = resolve_cluster_broker(cluster, obj.name, operator_namespace)
        broker = brokers(resolved)
        message = ensure_exchange(broker, resolved.exchange)
        message += "; " + broker.keep_unroutable(unroutable_for(resolved.exchange))
        claim = None
        if settings is not None and settings.install_id:
            claim = check_claim(broker, settings.cluster, settings.install_id, resolved.endpoint.vhost)
    except (MissingReference, KubeError, BrokerError) as e:
        diagnosis = failures.for_broker(e, str(e))
        return conclude(obj, diagnosis.observations, now=now, temporary_failure=diagnosis.temporary_failure)
    observations = [failures.reachable(resolved.endpoint.host), *([claim] if claim else []), ready(claim, message)]
    return conclude(obj, observations, now=now)
