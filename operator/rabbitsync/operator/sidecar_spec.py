"""The consumer sidecar container the operator adds to a service's Deployment. Pure.

The sidecar runs the service's own code (its handlers, models and database), so it starts from the
app container: same image, working directory, environment and volume mounts. On top come the
broker connection (from the SyncBroker's Secret, never inlined), who we are, and the consumer
contract (``RABBITSYNC_SUBSCRIPTIONS``). The result is a server-side-apply body holding *only*
what the operator owns, so ``kubectl apply`` or a GitOps tool keeps owning everything else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rabbitsync.topology import consumer
from rabbitsync.topology.consumer import ConsumerSpec

CONTAINER_NAME = "rabbitsync-sidecar"
FIELD_MANAGER = "rabbitsync-operator"
APP_CONTAINER_ANNOTATION = "rabbitsync.io/app-container"
HTTP_PORT = 8088
COMMAND = ("python", "manage.py", "rabbitsync_sidecar")

# Variables the operator sets; the app container's values for them are replaced, not duplicated.
_OWNED_ENV = (
    "RABBITSYNC_AMQP_URL",
    "RABBITSYNC_CLUSTER",
    "RABBITSYNC_NAMESPACE",
    "RABBITSYNC_SERVICE",
    "RABBITSYNC_EXCHANGE",
    "RABBITSYNC_SUBSCRIPTIONS",
    "RABBITSYNC_HTTP_HOST",
    "RABBITSYNC_HTTP_PORT",
)


class NoAppContainer(ValueError):
    """The Deployment has no container the sidecar could be modelled on."""


def app_container(deployment: Mapping[str, Any]) -> Mapping[str, Any]:
    """The container the sidecar copies: the annotated one, else the first that is not ours."""
    containers = [
        c for c in deployment["spec"]["template"]["spec"].get("containers", []) if c["name"] != CONTAINER_NAME
    ]
    wanted = (deployment["metadata"].get("annotations") or {}).get(APP_CONTAINER_ANNOTATION)
    for c in containers:
        if wanted is None or c["name"] == wanted:
            return c
    raise NoAppContainer(
        f"container {wanted!r} (annotation {APP_CONTAINER_ANNOTATION}) not found" if wanted else "no containers"
    )


def sidecar_container(
    app: Mapping[str, Any],
    consumers: Sequence[ConsumerSpec],
    *,
    cluster: str,
    service: str,
    exchange: str,
    broker_secret: str,
) -> dict[str, Any]:
    env = [e for e in app.get("env", []) if e["name"] not in _OWNED_ENV]
    env += [
        {"name": "RABBITSYNC_AMQP_URL", "valueFrom": {"secretKeyRef": {"name": broker_secret, "key": "uri"}}},
        {"name": "RABBITSYNC_CLUSTER", "value": cluster},
        {"name": "RABBITSYNC_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "RABBITSYNC_SERVICE", "value": service},
        {"name": "RABBITSYNC_EXCHANGE", "value": exchange},
        # Sorted by subscription so that the same subscriptions always give the same pod template:
        # an unchanged set must never roll the pods.
        {"name": "RABBITSYNC_SUBSCRIPTIONS", "value": consumer.dumps(sorted(consumers, key=lambda c: c.subscription))},
        # The pod IP, not 0.0.0.0: probes reach it there, and it keeps pods apart where several share a host
        # network (the local pod runner gives each pod its own loopback address).
        {"name": "RABBITSYNC_HTTP_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "RABBITSYNC_HTTP_PORT", "value": str(HTTP_PORT)},
    ]
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": app["image"],
        "command": list(COMMAND),
        "env": env,
        "ports": [{"name": "rs-http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "rs-http"}, "periodSeconds": 5},
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "rs-http"},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        # Graceful shutdown finishes and acks the in-flight message; the pod's grace period bounds it.
        "resources": {"requests": {"cpu": "50m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}},
    }
    for key in ("workingDir", "envFrom", "volumeMounts", "securityContext", "imagePullPolicy"):
        if key in app:
            container[key] = app[key]
    return container


def apply_body(name: str, namespace: str, container: Mapping[str, Any] | None) -> dict[str, Any]:
    """Server-side apply body for the Deployment: our container, or nothing (which removes it)."""
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
    }
    if container is not None:
        body["spec"] = {"template": {"spec": {"containers": [dict(container)]}}}
    return body
