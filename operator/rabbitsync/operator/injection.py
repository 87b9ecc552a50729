"""Sidecar injection: keep each service's Deployment carrying one sidecar for its subscriptions and publications.

The sidecar is computed from *all* live SyncSubscriptions and SyncPublications naming the service, so
adding or removing one changes the sidecar's configuration once (one rollout), and the last one
removing it takes the sidecar away. A publish-only service gets one too: the sidecar is what sends the
outbox. Only a Deployment annotated ``rabbitsync.io/inject: "true"`` gets a sidecar: creating a
SyncSubscription must not be a way to add a container to somebody else's Deployment. Writes go through
server-side apply with the operator's own field manager.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rabbitsync.api.conditions import SIDECAR_INJECTED
from rabbitsync.conventions import service_secret_name
from rabbitsync.operator import credentials, failures, sidecar_spec
from rabbitsync.operator.kube import Cluster, KubeError, LivePublication, LiveSubscription
from rabbitsync.operator.references import ResolvedBroker
from rabbitsync.operator.settings import OperatorSettings
from rabbitsync.operator.status import Observation
from rabbitsync.topology import sidecar_contract as consumer

INJECTION_NOT_ALLOWED = "InjectionNotAllowed"


@dataclass(frozen=True)
class SidecarResult:
    observation: Observation
    """The SidecarInjected condition."""
    refused: KubeError | None = None
    """What the API server refused, when that is why the sidecar is not as wanted."""

    @property
    def temporary_failure(self) -> str | None:
        """Why to retry soon: the API server's refusal was temporary (a conflict, an outage)."""
        return self.observation.message if self.refused is not None and failures.retry_soon(self.refused) else None


def sync_service(
    cluster: Cluster,
    settings: OperatorSettings,
    namespace: str,
    service: str,
    broker: ResolvedBroker | None,
) -> SidecarResult:
    """Apply the sidecar the service's live declarations call for; report it as a SidecarInjected observation.

    ``broker`` may be None only when the caller could not resolve it: then a sidecar can still be removed
    (no live declaration left) but not configured. The checksum of the service's Secret goes into the
    pod template, so that a rotation rolls the pods.
    """
    try:
        deployment = cluster.deployment(namespace, service)
        subs = cluster.live_subscriptions(namespace, service)
        pubs = cluster.live_publications(namespace, service)
        checksum = credentials.current_checksum(cluster, namespace, service)
    except KubeError as e:
        return SidecarResult(Observation(SIDECAR_INJECTED, "False", e.reason, str(e)), e)
    wanted = bool(subs or pubs)
    refusal = _refusal(deployment, namespace, service, broker, subs, pubs) if wanted else None
    if refusal is not None:
        return _remove_refused(cluster, namespace, service, deployment, refusal)
    try:
        container = _container(deployment, settings, namespace, service, broker, subs) if wanted and broker else None
    except sidecar_spec.NoAppContainer as e:
        return SidecarResult(
            Observation(SIDECAR_INJECTED, "False", "NoAppContainer", f"Deployment {namespace}/{service}: {e}")
        )
    try:
        if container is None or not sidecar_spec.in_place(deployment, container, checksum):
            cluster.apply_sidecar(namespace, service, container, checksum)
    except KubeError as e:
        return SidecarResult(Observation(SIDECAR_INJECTED, "False", "ApplyFailed", str(e)), e)
    names = ", ".join(s.name for s in subs) or "none"
    sends = " and sends its outbox" if pubs else ""
    return SidecarResult(
        Observation(
            SIDECAR_INJECTED, "True", "Injected", f"{sidecar_spec.CONTAINER_NAME} in {service} consumes: {names}{sends}"
        )
    )


def _refusal(
    deployment: Mapping[str, Any],
    namespace: str,
    service: str,
    broker: ResolvedBroker | None,
    subs: list[LiveSubscription],
    pubs: list[LivePublication],
) -> Observation | None:
    """Why no sidecar may be configured for these declarations, if that is so."""
    if not sidecar_spec.opted_in(deployment):
        return Observation(
            SIDECAR_INJECTED,
            "False",
            INJECTION_NOT_ALLOWED,
            f'Deployment {namespace}/{service} has not opted in: annotate it {sidecar_spec.INJECT_ANNOTATION}="true"',
        )
    if broker is None:
        return Observation(SIDECAR_INJECTED, "Unknown", "BrokerNotResolved", "the broker or its Secret is missing")
    named = {s.spec.broker for s in subs} | {p.spec.broker for p in pubs}
    others = sorted(named - {broker.name})
    if others:
        # One sidecar holds one connection: a service cannot use two brokers.
        return Observation(
            SIDECAR_INJECTED,
            "False",
            "BrokerMismatch",
            f"subscriptions and publications of {service} name several brokers ({', '.join([broker.name, *others])})",
        )
    return None


def _remove_refused(
    cluster: Cluster, namespace: str, service: str, deployment: Mapping[str, Any], refusal: Observation
) -> SidecarResult:
    """A Deployment that opted out after an injection loses the sidecar; otherwise nothing is written."""
    if refusal.reason != INJECTION_NOT_ALLOWED or sidecar_spec.injected(deployment) is None:
        return SidecarResult(refusal)
    try:
        cluster.apply_sidecar(namespace, service, None)
    except KubeError as e:
        return SidecarResult(Observation(SIDECAR_INJECTED, "False", "ApplyFailed", str(e)), e)
    return SidecarResult(refusal)


def _container(
    deployment: Mapping[str, Any],
    settings: OperatorSettings,
    namespace: str,
    service: str,
    broker: ResolvedBroker,
    subs: list[LiveSubscription],
) -> dict[str, Any]:
    consumers = [
        consumer.for_subscription(cluster=settings.cluster, namespace=namespace, subscription=s.name, spec=s.spec)
        for s in subs
    ]
    return sidecar_spec.sidecar_container(
        sidecar_spec.app_container(deployment),
        consumers,
        cluster=settings.cluster,
        service=service,
        exchange=broker.exchange,
        secret=service_secret_name(service),
    )
