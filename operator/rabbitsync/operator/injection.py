"""Sidecar injection: keep each service's Deployment carrying one consumer sidecar for its subscriptions.

The sidecar is computed from *all* live SyncSubscriptions naming the service, so adding or removing
one changes the sidecar's configuration once (one rollout), and the last one removing it takes the
sidecar away. Writes go through server-side apply with the operator's own field manager.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from rabbitsync.api.conditions import SIDECAR_INJECTED
from rabbitsync.api.meta import GROUP, VERSION
from rabbitsync.api.syncsubscription import RESOURCE as SUBSCRIPTION
from rabbitsync.api.syncsubscription import SyncSubscriptionSpec
from rabbitsync.operator import sidecar_spec
from rabbitsync.operator.kube import ResolvedBroker
from rabbitsync.operator.settings import OperatorSettings
from rabbitsync.operator.status import Observation
from rabbitsync.topology import sidecar_contract as consumer


def _live_subscriptions(api: client.ApiClient, namespace: str, service: str) -> list[dict[str, Any]]:
    items = client.CustomObjectsApi(api).list_namespaced_custom_object(GROUP, VERSION, namespace, SUBSCRIPTION.plural)[
        "items"
    ]
    return [s for s in items if s["spec"].get("service") == service and not s["metadata"].get("deletionTimestamp")]


def sync_service(
    api: client.ApiClient, settings: OperatorSettings, namespace: str, service: str, broker: ResolvedBroker | None
) -> Observation:
    """Apply the sidecar the service's live subscriptions call for; report it as a SidecarInjected observation.

    ``broker`` may be None only when the caller could not resolve it: then a sidecar can still be removed
    (no live subscription left) but not configured.
    """
    apps = client.AppsV1Api(api)
    try:
        deployment = apps.read_namespaced_deployment(service, namespace)
    except ApiException as e:
        if e.status == 404:
            return Observation(
                SIDECAR_INJECTED, "False", "DeploymentNotFound", f"Deployment {namespace}/{service} does not exist"
            )
        raise
    subs = _live_subscriptions(api, namespace, service)
    specs = {s["metadata"]["name"]: SyncSubscriptionSpec.model_validate(s["spec"]) for s in subs}
    if specs and broker is None:
        return Observation(SIDECAR_INJECTED, "Unknown", "BrokerNotResolved", "the SyncBroker or its Secret is missing")
    other_brokers = sorted({spec.broker for spec in specs.values()} - {broker.name}) if broker else []
    if broker and other_brokers:
        # One sidecar holds one connection: a service cannot consume from two brokers.
        return Observation(
            SIDECAR_INJECTED,
            "False",
            "BrokerMismatch",
            f"subscriptions of {service} name several brokers ({', '.join([broker.name, *other_brokers])})",
        )
    consumers = [
        consumer.for_subscription(cluster=settings.cluster, namespace=namespace, subscription=name, spec=spec)
        for name, spec in specs.items()
    ]
    raw = api.sanitize_for_serialization(deployment)
    try:
        container = (
            sidecar_spec.sidecar_container(
                sidecar_spec.app_container(raw),
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
        return Observation(SIDECAR_INJECTED, "False", "NoAppContainer", f"Deployment {namespace}/{service}: {e}")
    try:
        apply(api, namespace, service, container)
    except ApiException as e:
        return Observation(
            SIDECAR_INJECTED, "False", "ApplyFailed", f"Deployment {namespace}/{service}: {e.reason}: {e.body}"
        )
    names = ", ".join(sorted(specs)) or "none"
    return Observation(
        SIDECAR_INJECTED, "True", "Injected", f"{sidecar_spec.CONTAINER_NAME} in {service} consumes: {names}"
    )


def apply(api: client.ApiClient, namespace: str, name: str, container: dict[str, Any] | None) -> None:
    client.AppsV1Api(api).patch_namespaced_deployment(
        name,
        namespace,
        sidecar_spec.apply_body(name, namespace, container),
        field_manager=sidecar_spec.FIELD_MANAGER,
        force=True,
        _content_type="application/apply-patch+yaml",
    )
