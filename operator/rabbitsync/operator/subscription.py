"""A SyncSubscription as reconcile and cleanup see it, and the status fields a broker sync determines.

The spec stays raw until used: one the model refuses must become a condition (or, on deletion, a
released finalizer), not an exception in the handler.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rabbitsync.amqp.sync import SyncResult
from rabbitsync.api.conditions import (
    CREDENTIALS_READY,
    READY,
    SIDECAR_INJECTED,
    TOPOLOGY_SYNCED,
    Condition,
    get_condition,
)
from rabbitsync.api.syncsubscription import SyncSubscriptionSpec
from rabbitsync.operator import status as st
from rabbitsync.operator.kube import decode
from rabbitsync.operator.outcome import SpecView
from rabbitsync.operator.settings import OperatorSettings
from rabbitsync.topology import naming
from rabbitsync.topology.desired import desired_topology
from rabbitsync.topology.model import Topology

KIND = "SyncSubscription"
NO_CONSUMER = "NoConsumer"
"""Ready's reason when everything is in place but no consumer is attached to the main queue."""


@dataclass(frozen=True)
class Subscription(SpecView):
    """The parts of a SyncSubscription object a reconcile reads."""

    def spec(self) -> SyncSubscriptionSpec:
        """The validated spec; raises ``kube.Invalid`` naming the field."""
        return decode.spec(SyncSubscriptionSpec, KIND, self.namespace, self.name, self.raw_spec)

    def previously_synced(self) -> bool:
        """This spec generation was verified on the broker before: what is repaired now is drift."""
        synced = _true(st.conditions_of(self.status), TOPOLOGY_SYNCED)
        return synced and self.status.get("observedGeneration") == self.generation

    def may_have_obsolete_queues(self) -> bool:
        """Delay queues the schedule dropped may be on the broker: this generation is not verified yet, or
        some were left (``retiringQueues``; absent in an older release's status, which did not say), or
        an older release verified it with delay queues of its own (``retryQueues`` names them), which
        the cluster's shared ones replace."""
        return (
            not self.previously_synced()
            or self.status.get("retiringQueues") != []
            or any(not naming.shared_by_cluster(q) for q in self.status.get("retryQueues") or [])
        )

    def waiting_only_for_consumer(self) -> bool:
        """Its last reconcile verified this generation's topology, put the service's credentials,
        injected the sidecar, left no delay queue to retire, and found no consumer on the queue: a look
        at the queue is all it still needs. (Credentials that failed, say to a sibling's concurrent
        write of the service's Secret, are put again only by a full reconcile.)"""
        conditions = st.conditions_of(self.status)
        ready = get_condition(conditions, READY)
        return (
            self.previously_synced()
            and not self.may_have_obsolete_queues()
            and ready is not None
            and (ready.status, ready.reason) == ("False", NO_CONSUMER)
            and all(_true(conditions, type_) for type_ in (SIDECAR_INJECTED, CREDENTIALS_READY))
        )

    def healthy(self) -> bool:
        """Ready at this generation, with the service's credentials put: nothing waits on a change
        elsewhere (a consumer, a broker) nor on a retry (a credentials write lost to a sibling's)."""
        conditions = st.conditions_of(self.status)
        return (
            _true(conditions, READY)
            and _true(conditions, CREDENTIALS_READY)
            and self.status.get("observedGeneration") == self.generation
        )

    def left_behind(self) -> str:
        """The main queue as last reported, for Events about queues left on the broker."""
        return str(self.status.get("queue") or "(never created)")


def _true(conditions: Sequence[Condition], type_: str) -> bool:
    found = get_condition(conditions, type_)
    return found is not None and found.status == "True"


def topology_for(settings: OperatorSettings, sub: Subscription, spec: SyncSubscriptionSpec, exchange: str) -> Topology:
    return desired_topology(
        cluster=settings.cluster, namespace=sub.namespace, subscription=sub.name, spec=spec, exchange=exchange
    )


def status_fields(result: SyncResult) -> dict[str, Any]:
    """The SyncSubscription ``status`` fields a sync determines (camelCase, ready to patch)."""
    topology = result.topology
    return {
        "queue": topology.main_queue.name,
        "retryQueues": [q.name for q in topology.retry_queues],
        "retiringQueues": sorted({*result.retiring, *result.kept_not_empty}),
        "deadLetterQueue": topology.dead_letter_queue.name,
        "exchange": topology.exchange,
        "queueDepth": result.queue_depth,
        "consumers": result.consumers,
        "deadLettered": result.dead_lettered,
    }
