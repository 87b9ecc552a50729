"""The consumer sidecar container the operator adds to a service's Deployment. Pure.

The sidecar runs the service's own code (its handlers, models and database), so it starts from the
app container: same image, working directory, environment and volume mounts. On top comes the
operator-sidecar contract (:class:`~rabbitsync.topology.sidecar_contract.SidecarConfig`) rendered as
env: the broker URI and CA from the service's own Secret ``rabbitsync-<service>`` (never inlined, and
never the operator's credential), who we are, and the queues to consume. The sidecar runs hardened
whatever the app container does: non-root, read-only root filesystem, no capabilities, no privilege
escalation; it writes only where the app's own volume mounts let it. The result is a server-side-apply
body holding *only* what the operator owns (the container, and the pod template's credentials
checksum that rolls the pods on a rotation), so ``kubectl apply`` or a GitOps tool keeps owning
everything else.

The sidecar is a Kubernetes *native sidecar* (an init container with ``restartPolicy: Always``, stable
since 1.29): the kubelet starts it before the app containers, keeps it running and restarts it, and
stops it after them, so the app's last writes still reach the outbox relay. It has no readinessProbe:
a native sidecar's readiness counts toward the pod's, and the broker being away must never take the
service's API out of its Service (the outbox keeps the writes meanwhile). No startupProbe either: it
would hold the app containers back until the sidecar answers. Consumer health goes to liveness (a
wedged loop is restarted), the sidecar's metrics and the subscription's ``Ready`` condition. Older
releases injected a regular container; applying the native one with the same field manager removes
that one in the same write (server-side apply drops what the manager no longer sends), which is the
migration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rabbitsync.topology.sidecar_contract import ConsumerSpec, EnvValue, PodField, SecretKey, SidecarConfig, to_env

CONTAINER_NAME = "rabbitsync-sidecar"
FIELD_MANAGER = "rabbitsync-operator"
APP_CONTAINER_ANNOTATION = "rabbitsync.io/app-container"
INJECT_ANNOTATION = "rabbitsync.io/inject"
"""On a Deployment: ``"true"`` lets the operator add its sidecar (opt-in; nothing is injected otherwise)."""
CREDENTIALS_ANNOTATION = "rabbitsync.io/credentials"
"""On the pod template: a checksum of the service's credentials, so a rotation rolls the pods."""
COMMAND = ("python", "manage.py", "rabbitsync_sidecar")
SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}
"""Ours, over whatever the app container's securityContext says (its user and group are kept)."""


class NoAppContainer(ValueError):
    """The Deployment has no container the sidecar could be modelled on."""


def opted_in(deployment: Mapping[str, Any]) -> bool:
    """Whether the Deployment allows injection (annotation ``rabbitsync.io/inject: "true"``)."""
    return (deployment["metadata"].get("annotations") or {}).get(INJECT_ANNOTATION) == "true"


def injected(deployment: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Our sidecar in the Deployment's pod template, native (an init container) or of an older release."""
    spec = deployment["spec"]["template"]["spec"]
    return next(
        (c for c in [*spec.get("initContainers", []), *spec.get("containers", [])] if c["name"] == CONTAINER_NAME),
        None,
    )


def in_place(deployment: Mapping[str, Any], container: Mapping[str, Any], credentials: str | None = None) -> bool:
    """Whether applying ``apply_body(..., container, credentials)`` would change nothing in ``deployment``.

    The live container holds what the API server defaulted besides ours (``terminationMessagePath``,
    a ``fieldRef``'s ``apiVersion``...), so ours must be *within* it, not equal to it. Anything in
    doubt (an older release's regular container, a list of another length) counts as not in place:
    applying again is always safe, only slower. Every reconcile of every subscription of a service
    computes the same sidecar; applying it anyway cost the API server a server-side apply of the
    whole Deployment each time, the largest part of its CPU at 1,000 subscriptions.
    """
    template = deployment["spec"]["template"]
    live = injected(deployment)
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    return (
        live is not None
        and is_native(live)
        and all(c["name"] != CONTAINER_NAME for c in template["spec"].get("containers", []))
        and annotations.get(CREDENTIALS_ANNOTATION) == credentials
        and _within(container, live)
    )


def _within(ours: Any, live: Any) -> bool:
    if isinstance(ours, Mapping):
        return isinstance(live, Mapping) and all(k in live and _within(v, live[k]) for k, v in ours.items())
    if isinstance(ours, list | tuple):
        return isinstance(live, list) and len(ours) == len(live) and all(map(_within, ours, live))
    return bool(ours == live)


def is_native(container: Mapping[str, Any]) -> bool:
    """Whether ``container`` is a native sidecar (what this release injects)."""
    return container.get("restartPolicy") == "Always"


def app_container(deployment: Mapping[str, Any]) -> Mapping[str, Any]:
    """The container the sidecar copies: the annotated one, else the first that is not ours."""
    containers: list[Mapping[str, Any]] = [
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
    secret: str,
) -> dict[str, Any]:
    """The sidecar for ``consumers`` (none: it only sends the outbox), modelled on ``app``; the broker URI
    and CA are read from the service's Secret ``secret``."""
    config = SidecarConfig(
        cluster=cluster,
        service=service,
        exchange=exchange,
        # Sorted so that the same subscriptions always give the same pod template: an unchanged set
        # must never roll the pods.
        subscriptions=tuple(sorted(consumers, key=lambda c: c.subscription)),
    )
    ours = [_env_var(name, value, secret) for name, value in to_env(config).items()]
    # The app container's values for the contract's variables are replaced, not duplicated.
    owned = {var["name"] for var in ours}
    env = [e for e in app.get("env", []) if e["name"] not in owned] + ours
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": app["image"],
        "command": list(COMMAND),
        "env": env,
        "ports": [{"name": "rs-http", "containerPort": config.http_port, "protocol": "TCP"}],
        # Native sidecar: started before the app containers, restarted whenever it exits.
        "restartPolicy": "Always",
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "rs-http"},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        # Graceful shutdown finishes and acks the in-flight message; the pod's grace period bounds it.
        "resources": {"requests": {"cpu": "50m", "memory": "96Mi"}, "limits": {"memory": "256Mi"}},
    }
    for key in ("workingDir", "envFrom", "volumeMounts", "imagePullPolicy"):
        if key in app:
            container[key] = app[key]
    container["securityContext"] = {**app.get("securityContext", {}), **SECURITY_CONTEXT}
    return container


def _env_var(name: str, value: EnvValue, secret: str) -> dict[str, Any]:
    if isinstance(value, SecretKey):
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": value.key}}}
    if isinstance(value, PodField):
        return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": value.path}}}
    return {"name": name, "value": value}


def apply_body(
    name: str, namespace: str, container: Mapping[str, Any] | None, credentials: str | None = None
) -> dict[str, Any]:
    """Server-side apply body for the Deployment: our native sidecar and the credentials checksum, or nothing
    (which removes both, and a regular container an older release injected)."""
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
    }
    if container is not None:
        template: dict[str, Any] = {"spec": {"initContainers": [dict(container)]}}
        if credentials is not None:
            template["metadata"] = {"annotations": {CREDENTIALS_ANNOTATION: credentials}}
        body["spec"] = {"template": template}
    return body
