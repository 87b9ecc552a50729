"""Sidecar injection: keep each service's Deployment carrying one consumer sidecar for its subscriptions.

The sidecar is computed from *all* live SyncSubscriptions naming the service, so adding or removing
one changes the sidecar's configuration once (one rollout), and the last one removing it takes the
sidecar away. Writes go through server-side apply with the operator's own field manager.
"""

from __future__ import annotations

from dataclasses import dataclass

from rabbitsync.api.conditions import SIDECAR_INJECTED
from rabbitsync.operator import sidecar_spec
from rabbitsync.operator.kube import Cluster, KubeError
from rabbitsync.operator.references import ResolvedBroker
from rabbitsync.operator.settings import OperatorSettings
from rabbitsync.operator.status import Observation
from rabbitsync.topology import sidecar_contract as consumer


@dataclass(frozen=True)
class SidecarResult:
    observation: Observation
    """The SidecarInjected condition."""
    refused: KubeError | None = None
    """What the API server refused, when that is why the sidecar is not as wanted."""


def sync_service(
    cluster: Cluster, settings: OperatorSettings, namespace: str, service: str, broker: ResolvedBroker | None
) -> SidecarResult:
    """Apply the sidecar the service's live subscriptions call for; report it as a SidecarInjected observation.

    ``broker`` may be None only when the caller could not resolve it: then a sidecar can still be removed
    (no live subscription left) but not configured.
    """
    try:
        deployment = cluster.deployment(namespace, service)
        subs = cluster.live_subscriptions(namespace, service)
    except KubeError as e:
        return SidecarResult(Observation(SIDECAR_INJECTED, "False", e.reason, str(e)), e)
    if subs and broker is None:
        return SidecarResult(
            Observation(SIDECAR_INJECTED, "Unknown", "BrokerNotResolved", "the SyncBroker or its Secret is missing")
        )
    other_brokers = sorted({s.spec.broker for s in subs} - {broker.name}) if broker else []
    if broker and other_brokers:
        # One sidecar holds one connection: a service cannot consume from two brokers.
        return SidecarResult(
            Observation(
                SIDECAR_INJECTED,
                "False",
                "BrokerMismatch",
                f"subscriptions of {service} name several brokers ({', '.join([broker.name, *other_brokers])})",
            )
        )
    consumers = [
        consumer.for_subscription(cluster=settings.cluster, namespace=namespace, subscription=s.name, spec=s.spec)
        for s in subs
    ]
    try:
        container = (
            sidecar_spec.sidecar_container(
                sidecar_spec.app_container(deployment),
                consumers,
                cluster=settings.cluster,
                service=service,
                exchange=broker.exchange,
                broker_secret=broker.secret_name,
            )
            if consumers and broker
            else None
        )
    except sidecar_spec.NoAppContainer as e:
        return SidecarResult(
            Observation(SIDECAR_INJECTED, "False", "NoAppContainer", f"Deployment {namespace}/{service}: {e}")
        )
    try:
        cluster.apply_sidecar(namespace, service, container)
    except KubeError as e:
        return SidecarResult(Observation(SIDECAR_INJECTED, "False", "ApplyFailed", str(e)), e)
    names = ", ".join(s.name for s in subs) or "none"
    return SidecarResult(
        Observation(
            SIDECAR_INJECTED, "True", "Injected", f"{sidecar_spec.CONTAINER_NAME} in {service} consumes: {names}"
        )
    )
