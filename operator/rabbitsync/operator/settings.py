"""The operator's own settings, from the environment (flags override them in ``main``).

One frozen dataclass, validated once at start-up: a missing or malformed value stops the operator
with a message naming the variable, instead of surfacing later as a confusing reconcile failure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from rabbitsync.api.clustersyncbroker import DEFAULT_OPERATOR_NAMESPACE

_CLUSTER_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")

# Values a template leaves for someone else to fill in. Valid names, so the grammar lets them through, but
# two clusters installed from the same template would share every queue name: refused at start.
PLACEHOLDER_CLUSTERS = frozenset({"set-by-overlay", "set-me", "changeme", "change-me", "placeholder", "todo", "unset"})


class SettingsError(ValueError):
    """A setting is missing or invalid; the message says which and how to fix it."""


@dataclass(frozen=True)
class OperatorSettings:
    cluster: str
    """This cluster's name on the shared broker (``RABBITSYNC_CLUSTER``, required). It is part of every
    queue name the operator creates, which is what keeps two clusters' operators off each other's queues;
    changing it orphans existing queues, so it has no default."""

    install_id: str = ""
    """What tells this cluster apart from any other that might use the same name on the broker: the UID of
    its ``kube-system`` Namespace (read at start, it lives as long as the cluster) unless
    ``RABBITSYNC_INSTALL_ID`` is set. The operator claims its cluster name on each broker with it."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch (``RABBITSYNC_NAMESPACES``, comma-separated); empty means cluster-wide."""

    resync_seconds: float = 30.0
    """Interval of the drift sweep of each broker and of the brokers' and publications' own resync
    (``RABBITSYNC_RESYNC_SECONDS``). 30 s bounds how long an out-of-band deletion or a dead broker goes
    unreported, at one listing of the broker per sweep (``operator.drift``)."""

    refresh_seconds: float = 600.0
    """Average interval of each Ready subscription's own resync, which refreshes its status counts
    (``RABBITSYNC_REFRESH_SECONDS``): rare, since the sweep finds drift for all of them at once; each
    one's next is drawn from half to one and a half of it, so that a thousand created together do
    not come back together (``operator.refresh``)."""

    broker_connections: int = 1
    """AMQP connections the operator keeps per broker (``RABBITSYNC_BROKER_CONNECTIONS``): one is
    enough once converged; a few more declare a burst of new subscriptions' queues in parallel."""

    max_backoff_seconds: float = 300.0
    """Cap of the exponential retry delay after a failed reconcile (``RABBITSYNC_MAX_BACKOFF_SECONDS``),
    so a broker down for an hour is polled every 5 minutes at most, not hammered."""

    delete_give_up_attempts: int = 8
    """Failed attempts to clean up a deleted subscription's queues before the finalizer is released anyway
    (``RABBITSYNC_DELETE_ATTEMPTS``): a gone broker must never block deletion forever. With the capped
    exponential retry delay (2, 4, 8 ... s) 8 attempts span about 4 minutes: a broker restart or a short
    outage is waited out (queues left behind collect every event), a lost broker is not waited for."""

    orphan_grace_seconds: float = 3600.0
    """How long a queue named for this cluster may lack its SyncSubscription before it is removed
    (``RABBITSYNC_ORPHAN_GRACE_SECONDS``); reported at once. Far above a deletion's retry budget."""

    log_format: str = "text"
    """``text`` or ``json`` (``RABBITSYNC_LOG_FORMAT``)."""

    health_port: int = 8080
    """Port of the liveness endpoint ``/healthz`` (``RABBITSYNC_HEALTH_PORT``)."""

    metrics_port: int = 9090
    """Port of the Prometheus endpoint ``/metrics`` (``RABBITSYNC_METRICS_PORT``), on the health host."""

    health_host: str = "0.0.0.0"
    """Address the liveness endpoint binds (``RABBITSYNC_HEALTH_HOST``); the manifests use the pod IP."""

    operator_namespace: str = DEFAULT_OPERATOR_NAMESPACE
    """The operator's own namespace (``RABBITSYNC_OPERATOR_NAMESPACE``, the downward API in the manifests):
    where a ClusterSyncBroker's Secrets live, out of every tenant's reach."""

    service_max_connections: int = 64
    """Broker-side cap on one service user's connections (``RABBITSYNC_SERVICE_MAX_CONNECTIONS``): each
    replica holds about two (relay, sidecar), so 64 leaves room for a large rollout, not for a leak."""

    service_max_channels: int = 256
    """Broker-side cap on one service user's channels (``RABBITSYNC_SERVICE_MAX_CHANNELS``); rabbitsync
    opens one per connection."""

    backfill_response_seconds: float = 60.0
    """How long a backfill request may wait without any sidecar of its publisher consuming the request
    queue before the subscription says ``PublisherNotResponding`` (``RABBITSYNC_BACKFILL_RESPONSE_SECONDS``):
    long enough for a sidecar to (re)start, short enough to tell someone waiting for the data."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorSettings:
        env = os.environ if env is None else env
        cluster = _cluster_name(env)
        log_format = env.get("RABBITSYNC_LOG_FORMAT", "text")
        if log_format not in ("text", "json"):
            raise SettingsError(f"RABBITSYNC_LOG_FORMAT={log_format!r} is invalid: use text or json")
        namespaces = tuple(n.strip() for n in env.get("RABBITSYNC_NAMESPACES", "").split(",") if n.strip())
        return cls(
            cluster=cluster,
            install_id=env.get("RABBITSYNC_INSTALL_ID", "").strip(),
            namespaces=namespaces,
            resync_seconds=_positive(env, "RABBITSYNC_RESYNC_SECONDS", 30.0),
            refresh_seconds=_positive(env, "RABBITSYNC_REFRESH_SECONDS", 600.0),
            broker_connections=int(_positive(env, "RABBITSYNC_BROKER_CONNECTIONS", 1)),
            max_backoff_seconds=_positive(env, "RABBITSYNC_MAX_BACKOFF_SECONDS", 300.0),
            delete_give_up_attempts=int(_positive(env, "RABBITSYNC_DELETE_ATTEMPTS", 8)),
            orphan_grace_seconds=_positive(env, "RABBITSYNC_ORPHAN_GRACE_SECONDS", 3600.0),
            log_format=log_format,
            health_port=int(_positive(env, "RABBITSYNC_HEALTH_PORT", 8080)),
            metrics_port=int(_positive(env, "RABBITSYNC_METRICS_PORT", 9090)),
            health_host=env.get("RABBITSYNC_HEALTH_HOST") or "0.0.0.0",
            operator_namespace=env.get("RABBITSYNC_OPERATOR_NAMESPACE") or DEFAULT_OPERATOR_NAMESPACE,
            service_max_connections=int(_positive(env, "RABBITSYNC_SERVICE_MAX_CONNECTIONS", 64)),
            service_max_channels=int(_positive(env, "RABBITSYNC_SERVICE_MAX_CHANNELS", 256)),
            backfill_response_seconds=_positive(env, "RABBITSYNC_BACKFILL_RESPONSE_SECONDS", 60.0),
        )


def _cluster_name(env: Mapping[str, str]) -> str:
    cluster = env.get("RABBITSYNC_CLUSTER", "").strip()
    if not cluster:
        raise SettingsError(
            "RABBITSYNC_CLUSTER is not set: give this cluster a short unique name (e.g. east), "
            "it becomes part of every queue name this operator owns on the shared broker"
        )
    if not _CLUSTER_RE.match(cluster):
        raise SettingsError(f"RABBITSYNC_CLUSTER={cluster!r} is invalid: use 1-32 lowercase letters, digits and '-'")
    if cluster in PLACEHOLDER_CLUSTERS:
        raise SettingsError(
            f"RABBITSYNC_CLUSTER={cluster!r} is a placeholder: set this cluster's own name, unique on the broker "
            "(apply an overlay such as manifests/overlays/east, or helm's --set clusterName=east)"
        )
    return cluster


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as e:
        raise SettingsError(f"{name}={raw!r} is not a number") from e
    if value <= 0:
        raise SettingsError(f"{name}={raw!r} must be positive")
    return value
