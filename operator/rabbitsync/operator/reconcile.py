"""Reconciling one SyncSubscription: plain functions the kopf handlers call.

Every outcome, good or bad, becomes a status (conditions, broker-side names, counts) and Events;
only the *retry decision* is left to the handler. Temporary failures (broker unreachable, a
SyncBroker or Secret not there yet) ask for a capped exponential retry; permanent ones (access
refused, incompatible queue arguments) wait for the next resync or a spec change: no hot loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from rabbitsync.transport.errors import BrokerError
from rabbitsync.amqp.port import Broker
from rabbitsync.amqp.sync import delete_topology, observe_and_sync
from rabbitsync.api.conditions import BROKER_REACHABLE, READY, TOPOLOGY_SYNCED, Condition, get_condition
from rabbitsync.api.syncsubscription import SyncSubscriptionSpec
from rabbitsync.operator import injection
from rabbitsync.operator import status as st
from rabbitsync.operator.kube import MissingReference, ResolvedBroker, resolve_broker
from rabbitsync.operator.settings import OperatorSettings
from rabbitsync.topology.desired import desired_topology
from rabbitsync.topology.model import Topology

BrokerFactory = Callable[[ResolvedBroker], Broker]


@dataclass(frozen=True)
class Subscription:
    """The parts of a SyncSubscription object a reconcile reads."""

    namespace: str
    name: str
    generation: int | None
    spec: SyncSubscriptionSpec
    status: Mapping[str, Any]

    @classmethod
    def from_body(
        cls, namespace: str, name: str, meta: Mapping[str, Any], spec: Mapping[str, Any], status: Mapping[str, Any]
    ) -> Subscription:
        return cls(
            namespace=namespace,
            name=name,
            generation=meta.get("generation"),
            spec=SyncSubscriptionSpec.model_validate(dict(spec)),
            status=status,
        )

    @property
    def conditions(self) -> list[Condition]:
        return st.conditions_of(self.status)


@dataclass
class Outcome:
    status: dict[str, Any]
    notes: list[st.Note] = field(default_factory=list)
    temporary_failure: str | None = None
    """Set when retrying soon can help; the message says why."""


def topology_for(settings: OperatorSettings, sub: Subscription, exchange: str) -> Topology:
    return desired_topology(
        cluster=settings.cluster, namespace=sub.namespace, subscription=sub.name, spec=sub.spec, exchange=exchange
    )


def _previously_synced(sub: Subscription) -> bool:
    synced = get_condition(sub.conditions, TOPOLOGY_SYNCED)
    return bool(synced and synced.status == "True" and sub.status.get("observedGeneration") == sub.generation)


def reconcile(
    api: client.ApiClient,
    settings: OperatorSettings,
    sub: Subscription,
    broker_factory: BrokerFactory,
    now: datetime | None = None,
) -> Outcome:
    """Make the broker hold the subscription's topology, verify it, and say so in the status."""
    now = now or datetime.now(UTC)
    observations: list[st.Observation]
    extra: dict[str, Any] = {}
    notes: list[st.Note] = []
    temporary: str | None = None
    try:
        broker = resolve_broker(api, sub.namespace, sub.spec.broker)
    except MissingReference as e:
        reason = e.reason
        observations = [
            st.Observation(BROKER_REACHABLE, "Unknown", reason, str(e)),
            st.Observation(TOPOLOGY_SYNCED, "Unknown", reason, str(e)),
            st.Observation(READY, "False", reason, str(e)),
        ]
        temporary = str(e)
    except BrokerError as e:  # an unusable URI in the Secret
        observations = [
            st.Observation(BROKER_REACHABLE, "False", e.reason, str(e)),
            st.Observation(READY, "False", e.reason, str(e)),
        ]
    else:
        topology = topology_for(settings, sub, broker.exchange)
        try:
            result = observe_and_sync(broker_factory(broker), topology, previously_synced=_previously_synced(sub))
        except BrokerError as e:
            message = f"broker {broker.endpoint.host}: {e}"
            reachable = "True" if e.reason == "PreconditionFailed" else "False"
            observations = [
                st.Observation(BROKER_REACHABLE, reachable, "Connected" if reachable == "True" else e.reason, message),
                st.Observation(TOPOLOGY_SYNCED, "Unknown" if reachable == "False" else "False", e.reason, message),
                st.Observation(READY, "False", e.reason, message),
            ]
            if not e.permanent:
                temporary = message
        else:
            extra = result.status()
            if result.drift:
                notes.append(
                    st.Note("Warning", "DriftRepaired", "restored out-of-band changes: " + "; ".join(result.drift))
                )
            if result.kept_not_empty:
                notes.append(
                    st.Note(
                        "Normal",
                        "QueueKept",
                        "obsolete delay queue(s) still hold messages: " + ", ".join(result.kept_not_empty),
                    )
                )
            connected = st.Observation(BROKER_REACHABLE, "True", "Connected", f"broker {broker.endpoint.host}")
            if result.conflicts:
                message = "; ".join(result.conflicts)
                observations = [
                    connected,
                    st.Observation(TOPOLOGY_SYNCED, "False", "QueueArgumentsConflict", message),
                    st.Observation(READY, "False", "QueueArgumentsConflict", message),
                ]
            elif not result.verified:
                observations = [
                    connected,
                    st.Observation(TOPOLOGY_SYNCED, "False", "NotVerified", "topology not as desired after applying"),
                    st.Observation(READY, "False", "NotVerified", "topology not as desired after applying"),
                ]
                temporary = "topology not verified"
            else:
                synced_reason = "DriftRepaired" if result.drift else "Synced"
                observations = [
                    connected,
                    st.Observation(
                        TOPOLOGY_SYNCED,
                        "True",
                        synced_reason,
                        f"{len(topology.queues)} queues, {len(topology.bindings)} bindings verified",
                    ),
                    st.Observation(READY, "True", "TopologyVerified", f"queue {topology.main_queue.name}"),
                ]
        # The sidecar depends on the Deployment and the Secret's name, not on the broker being up.
        observations.append(injection.sync_service(api, settings, sub.namespace, sub.spec.service, broker))
    conditions, transition_notes = st.apply(sub.conditions, observations, generation=sub.generation, now=now)
    status = {**extra, "observedGeneration": sub.generation, "conditions": st.dump(conditions)}
    return Outcome(status=status, notes=[*transition_notes, *notes], temporary_failure=temporary)


@dataclass
class Cleanup:
    done: bool
    notes: list[st.Note]


def cleanup(
    api: client.ApiClient,
    settings: OperatorSettings,
    sub: Subscription,
    broker_factory: BrokerFactory,
    attempt: int,
) -> Cleanup:
    """Delete (or retain) the subscription's queues. ``done`` False means: retry, the finalizer stays.

    A broker that is gone or unreachable never blocks deletion forever: after
    ``settings.delete_give_up_attempts`` failed attempts the finalizer is released with a Warning Event
    naming what was left behind on the broker.
    """
    try:
        broker: ResolvedBroker | None = resolve_broker(api, sub.namespace, sub.spec.broker)
    except (MissingReference, BrokerError) as e:
        broker, missing = None, e
    if broker is not None and sub.spec.deletion_policy == "delete":
        topology = topology_for(settings, sub, broker.exchange)
        try:
            deleted = delete_topology(broker_factory(broker), topology)
        except BrokerError as e:
            names = ", ".join(q.name for q in topology.queues)
            if attempt + 1 < settings.delete_give_up_attempts:
                return Cleanup(False, [st.Note("Warning", e.reason, f"cleanup attempt {attempt + 1} failed: {e}")])
            note = st.Note(
                "Warning",
                "TopologyLeftBehind",
                f"gave up after {attempt + 1} attempts ({e}); left on the broker: {names}",
            )
        else:
            note = st.Note("Normal", "TopologyDeleted", "; ".join(deleted) or "nothing to delete")
    elif sub.spec.deletion_policy == "retain":
        queue = sub.status.get("queue") or "(never created)"
        note = st.Note("Normal", "TopologyRetained", f"deletionPolicy=retain: queue {queue} kept")
    else:
        left = sub.status.get("queue") or "(never created)"
        note = st.Note("Warning", "TopologyLeftBehind", f"{missing}; queues of {left} left on the broker")
    # This subscription no longer counts (it has a deletionTimestamp): shrink or remove the sidecar.
    sidecar = injection.sync_service(api, settings, sub.namespace, sub.spec.service, broker)
    notes = [note]
    if sidecar.status == "False" and sidecar.reason != "DeploymentNotFound":
        notes.append(st.Note("Warning", sidecar.reason, sidecar.message))
    return Cleanup(True, notes)


def backoff_seconds(retry: int, settings: OperatorSettings, base: float = 2.0) -> float:
    """Capped exponential delay for the ``retry``-th retry (0-based) of a temporary failure."""
    return float(min(settings.max_backoff_seconds, base * 2 ** min(retry, 16)))
