"""Reconciling one SyncBroker: can this cluster reach the broker, and does it hold the shared exchange?

The SyncBroker's own status answers "is the broker fine?" once, instead of every subscription that
uses it repeating the diagnosis. The shared exchange is declared here if missing (never deleted).
Failures become conditions through the same table as a subscription's (``failures``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rabbitsync.amqp.sync import ensure_exchange
from rabbitsync.api.conditions import READY
from rabbitsync.operator import failures
from rabbitsync.operator import status as st
from rabbitsync.operator.kube import Cluster, KubeError
from rabbitsync.operator.outcome import ReconcileOutcome, conclude
from rabbitsync.operator.reconcile import BrokerFactory
from rabbitsync.operator.references import MissingReference, resolve_broker
from rabbitsync.transport.errors import BrokerError


@dataclass(frozen=True)
class SyncBrokerObject:
    """The parts of a SyncBroker object its reconcile reads (the spec is read through the port)."""

    namespace: str
    name: str
    generation: int | None
    status: Mapping[str, Any]


def reconcile_broker(
    obj: SyncBrokerObject, cluster: Cluster, brokers: BrokerFactory, now: datetime | None = None
) -> ReconcileOutcome:
    now = now or datetime.now(UTC)
    try:
        resolved = resolve_broker(cluster, obj.namespace, obj.name)
        message = ensure_exchange(brokers(resolved), resolved.exchange)
    except (MissingReference, KubeError, BrokerError) as e:
        return conclude(
            obj.status,
            obj.generation,
            failures.broker_observations(e, str(e)),
            now=now,
            temporary_failure=str(e) if failures.retry_soon(e) else None,
        )
    observations = [failures.reachable(resolved.endpoint.host), st.Observation(READY, "True", "ExchangeReady", message)]
    return conclude(obj.status, obj.generation, observations, now=now)
