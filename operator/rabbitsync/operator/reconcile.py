"""Reconciling one SyncSubscription: a plain function of (subscription, cluster port, broker port).

Every outcome, good or bad, becomes a status (conditions, broker-side names, counts) and Events;
only the *retry decision* is left to the handler. Failures become conditions through the one table in
``failures``: temporary ones (broker unreachable, a SyncBroker or Secret not there yet) ask for a
capped exponential retry; permanent ones (access refused, incompatible queue arguments) wait for the
next resync or a spec change: no hot loop.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rabbitsync.amqp.sync import SyncResult, observe_and_sync
from rabbitsync.api.conditions import READY, TOPOLOGY_SYNCED
from rabbitsync.operator import credentials, failures, injection, rollout
from rabbitsync.operator import status as st
from rabbitsync.operator.kube import Cluster, NotFound
from rabbitsync.operator.outcome import ReconcileOutcome, conclude
from rabbitsync.operator.references import BrokerFactory, ResolvedBroker
from rabbitsync.operator.resolution import spec_and_broker
from rabbitsync.operator.settings import OperatorSettings
from rabbitsync.operator.subscription import NO_CONSUMER, Subscription, status_fields, topology_for
from rabbitsync.topology.model import Topology
from rabbitsync.transport.errors import BrokerError


def reconcile(
    sub: Subscription,
    cluster: Cluster,
    brokers: BrokerFactory,
    settings: OperatorSettings,
    now: datetime | None = None,
) -> ReconcileOutcome:
    """Make the broker hold the subscription's topology, verify it, inject the sidecar, say so in the status."""
    now = now or datetime.now(UTC)
    found = spec_and_broker(sub, sub.spec, cluster, settings.operator_namespace, failures.for_subscription, now)
    if isinstance(found, ReconcileOutcome):
        return found
    spec, broker = found
    topology = topology_for(settings, sub, spec, broker.exchange)
    fields: dict[str, Any] = {}
    notes: list[st.Note] = []
    extra: list[st.Observation] = []
    # Delay queues the schedule dropped go only once the service's pods all run the new schedule.
    retire = rollout.delay_queues_retirable(cluster, sub.namespace, spec.service, sub.name, topology)
    try:
        result = observe_and_sync(
            brokers(broker),
            topology,
            previously_synced=sub.previously_synced(),
            retire=retire,
            obsolete_queues=sub.may_have_obsolete_queues(),
        )
    except BrokerError as e:
        diagnosis = failures.for_subscription(e, f"broker {broker.endpoint.host}: {e}")
        observations, temporary = diagnosis.observations, diagnosis.temporary_failure
    else:
        observations, temporary = _synced(result, topology, broker)
        fields, notes = status_fields(result), _sync_notes(result)
        # The service's user gets read rights on the queues just verified.
        creds = credentials.sync_credentials(cluster, settings, sub.namespace, spec.service, broker, brokers)
        extra.append(creds.observation)
        if temporary is None and creds.failure is not None and failures.retry_soon(creds.failure):
            temporary = creds.observation.message
    # The sidecar depends on the Deployment and the Secret's name, not on the broker being up.
    sidecar = injection.sync_service(cluster, settings, sub.namespace, spec.service, broker)
    if temporary is None:
        temporary = sidecar.temporary_failure
    observations, waiting = consumed(observations, sidecar, fields.get("consumers"), spec.service, sub.namespace)
    fields["eventCount"] = len(spec.events)
    return conclude(
        sub,
        [*observations, *extra, sidecar.observation],
        now=now,
        fields=fields,
        notes=notes,
        temporary_failure=temporary or waiting,
    )


WAITING_FOR_CONSUMER = "waiting for a consumer"


def recheck_consumer(
    sub: Subscription,
    cluster: Cluster,
    brokers: BrokerFactory,
    settings: OperatorSettings,
    now: datetime | None = None,
) -> ReconcileOutcome | None:
    """What a retry of a subscription that waits only for a consumer needs: one look at its main queue.

    Only for ``sub.waiting_only_for_consumer()``: the full reconcile of this generation verified the
    rest moments ago, and while the subscription is not Ready the resync timer still runs a full one
    every resync interval. A full reconcile per retry costs about 22 management API calls, Secret and
    Deployment reads and a sidecar apply, to answer what one passive declare answers. Returns None when
    a full reconcile is needed after all: the broker cannot be resolved or asked, or the queue is gone.
    """
    now = now or datetime.now(UTC)
    found = spec_and_broker(sub, sub.spec, cluster, settings.operator_namespace, failures.for_subscription, now)
    if isinstance(found, ReconcileOutcome):
        return None
    spec, broker = found
    queue = topology_for(settings, sub, spec, broker.exchange).main_queue.name
    try:
        consumers = brokers(broker).consumers(queue)
    except BrokerError:
        return None
    if consumers is None:
        return None
    if not consumers:
        return conclude(sub, [], now=now, fields={"consumers": 0}, temporary_failure=WAITING_FOR_CONSUMER)
    return conclude(sub, [_verified_ready(queue)], now=now, fields={"consumers": consumers})


def consumed(
    observations: list[st.Observation],
    sidecar: injection.SidecarResult,
    consumers: int | None,
    service: str,
    namespace: str,
) -> tuple[list[st.Observation], str | None]:
    """Ready means "events will be consumed": a verified topology (``observations``' Ready) is not enough
    without the sidecar in the Deployment and a consumer on the queue. Returns the observations with
    Ready narrowed, and why to look again soon (a consumer about to attach)."""
    ready = next((o for o in observations if o.type == READY), None)
    if ready is None or ready.status != "True":
        return observations, None
    if isinstance(sidecar.refused, NotFound):
        verdict = st.Observation(READY, "False", "DeploymentNotFound", f"no Deployment {namespace}/{service}")
    elif sidecar.observation.status != "True":
        verdict = st.Observation(
            READY, "False", "SidecarNotInjected", f"{sidecar.observation.reason}: {sidecar.observation.message}"
        )
    elif not consumers:
        # Usually the pod is starting and its sidecar about to attach: look again soon.
        message = f"no consumer on {ready.message.removeprefix('queue ')}: is the {service} pod running?"
        return [
            *(o for o in observations if o is not ready),
            st.Observation(READY, "False", NO_CONSUMER, message),
        ], WAITING_FOR_CONSUMER
    else:
        return observations, None
    return [*(o for o in observations if o is not ready), verdict], None


def _synced(result: SyncResult, topology: Topology, broker: ResolvedBroker) -> tuple[list[st.Observation], str | None]:
    """The conditions of a sync the broker carried out, and why to retry soon if it is unfinished."""
    connected = failures.reachable(broker.endpoint.host)
    if result.conflicts:
        message = "; ".join(result.conflicts)
        return [
            connected,
            st.Observation(TOPOLOGY_SYNCED, "False", "QueueArgumentsConflict", message),
            st.Observation(READY, "False", "QueueArgumentsConflict", message),
        ], None
    if not result.verified:
        message = "topology not as desired after applying"
        return [
            connected,
            st.Observation(TOPOLOGY_SYNCED, "False", "NotVerified", message),
            st.Observation(READY, "False", "NotVerified", message),
        ], "topology not verified"
    verified = f"{len(topology.queues)} queues, {len(topology.bindings)} bindings verified"
    return [
        connected,
        st.Observation(TOPOLOGY_SYNCED, "True", "DriftRepaired" if result.drift else "Synced", verified),
        _verified_ready(topology.main_queue.name),
    ], None


def _verified_ready(queue: str) -> st.Observation:
    return st.Observation(READY, "True", "TopologyVerified", f"queue {queue}")


def _sync_notes(result: SyncResult) -> list[st.Note]:
    notes = []
    if result.drift:
        notes.append(st.Note("Warning", "DriftRepaired", "restored out-of-band changes: " + "; ".join(result.drift)))
    if result.kept_not_empty:
        notes.append(
            st.Note(
                "Normal",
                "QueueKept",
                "obsolete delay queue(s) still hold messages: " + ", ".join(result.kept_not_empty),
            )
        )
    if result.retiring:
        notes.append(
            st.Note(
                "Normal",
                "QueueRetiring",
                "obsolete delay queue(s) kept until the service's pods all run the new retry schedule: "
                + ", ".join(result.retiring),
            )
        )
    return notes
