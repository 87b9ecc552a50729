"""The operator-sidecar contract: the one typed model of what a consumer sidecar is told, and its env form.

The operator renders a :class:`SidecarConfig` into the sidecar container's environment; the sidecar's
Django settings parse the same variables back into the same fields. Both sides take the variable
names from this model (:func:`env_name`), so a renamed field renames the variable on both sides at
once instead of silently breaking injection. Fields the kubelet fills in (the broker URI and CA from
the service's own Secret ``rabbitsync-<service>``, the namespace and pod IP from the downward API)
carry a :class:`SecretKey` or :class:`PodField` marker saying where their value comes from.

Environment variables, not a mounted file, so that a change of subscriptions changes the pod
template and rolls the pods once. A field a release adds has a default that means what the releases
before it did: the operator still reads the environment of a Deployment an older release rendered
(:mod:`rabbitsync.operator.rollout`), to know where its pods publish. Pure: no Kubernetes, no Django,
no broker library.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, field_validator, model_validator
from pydantic.fields import FieldInfo

from rabbitsync.api.syncsubscription import SyncSubscriptionSpec
from rabbitsync.conventions import DEFAULT_EXCHANGE, SECRET_URI_KEY, EventType
from rabbitsync.topology import naming, retry

ENV_PREFIX = "RABBITSYNC_"
DEFAULT_HTTP_PORT = 8088
CA_KEY = "ca.crt"
"""Key of the service's Secret holding the broker's CA bundle (PEM; empty when the broker has no TLS CA)."""


class ConsumerSpec(BaseModel):
    """One subscription queue as the sidecar consumes it."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    subscription: str
    queue: str
    events: tuple[EventType, ...]
    max_attempts: int = Field(alias="maxAttempts", ge=1)
    retry_delays_ms: tuple[int, ...] = Field(
        alias="retryDelaysMs", description="delay before attempt 2, 3, ...; len == maxAttempts - 1"
    )
    retry_exchanges: tuple[str, ...] = Field(
        alias="retryExchanges",
        default=(),
        description="the shared delay exchange of each retry step; len == len(retryDelaysMs)",
    )
    """Empty in the contract of a release whose delay queues were the subscription's own, reached through
    the default exchange: read from a Deployment that release rendered, it says where its pods publish."""
    dead_letter: bool = Field(alias="deadLetter", default=True)
    prefetch: int = Field(ge=1, default=10)
    batch: int = Field(ge=1, default=1)
    """Deliveries applied per database transaction (each in a savepoint), acked together; 1: one by one."""

    @model_validator(mode="after")
    def _one_exchange_per_step(self) -> ConsumerSpec:
        if self.retry_exchanges and len(self.retry_exchanges) != len(self.retry_delays_ms):
            raise ValueError(
                f"retryExchanges has {len(self.retry_exchanges)} entries for {len(self.retry_delays_ms)} "
                "retryDelaysMs: a retry step would have no delay exchange, or one of another step"
            )
        return self

    @property
    def batch_size(self) -> int:
        """The batch actually taken: never more than the deliveries the broker lets us hold."""
        return min(self.batch, self.prefetch)

    def retry_queue(self, attempt: int) -> str:
        """Delay queue a delivery that failed on ``attempt`` (1-based) goes to (a shared delay
        exchange and its queue have one name)."""
        if self.retry_exchanges:
            return self.retry_exchanges[attempt - 1]
        return naming.retry_queue_name(self.queue, self.retry_delays_ms[attempt - 1])

    def retry_target(self, attempt: int) -> tuple[str, str]:
        """Exchange and routing key the retry of a delivery that failed on ``attempt`` is published with.

        A shared delay queue returns the message to the queue named by its routing key; the legacy
        one, the subscription's own, is reached by name through the default exchange.
        """
        if self.retry_exchanges:
            return self.retry_exchanges[attempt - 1], self.queue
        return "", self.retry_queue(attempt)

    @property
    def dead_letter_queue(self) -> str:
        return naming.dead_letter_queue_name(self.queue)


@dataclass(frozen=True)
class SecretKey:
    """The field's value is this key of the service's own Secret (``conventions.service_secret_name``)."""

    key: str


@dataclass(frozen=True)
class PodField:
    """The field's value is this field of the sidecar's own pod (the downward API)."""

    path: str


EnvValue = str | SecretKey | PodField
"""A variable's literal value, or where the kubelet reads it."""


class SidecarConfig(BaseModel):
    """What one consumer sidecar needs to run. The field order is the order of the rendered env.

    Fields marked with :class:`SecretKey` or :class:`PodField` are filled in by the kubelet: an
    instance the operator builds leaves them at their defaults, which are what a process run by hand
    outside Kubernetes gets.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    amqp_url: Annotated[str, SecretKey(SECRET_URI_KEY)] = ""
    """Broker URI, ``amqp://`` or ``amqps://``. Empty means "not configured": publishing still writes
    the outbox, nothing is sent."""
    ca_pem: Annotated[str, SecretKey(CA_KEY)] = ""
    """PEM CA bundle the broker's certificate is verified with (``BrokerEndpoint.ca_pem``); empty means
    the system trust store. The operator copies it from the broker's ``tls.caSecretRef``."""
    cluster: str = ""
    """With namespace and service: who we are, the ``source`` of published events."""
    namespace: Annotated[str, PodField("metadata.namespace")] = "default"
    service: str = ""
    exchange: str = DEFAULT_EXCHANGE
    """The topic exchange events are published to and bound on."""
    subscriptions: tuple[ConsumerSpec, ...] = ()
    """The queues the sidecar consumes; JSON (a list of objects, camelCase keys) in the environment."""
    http_host: Annotated[str, PodField("status.podIP")] = "0.0.0.0"
    """Address of the health/metrics server. Injected as the pod IP, not 0.0.0.0: probes reach it
    there, and it keeps pods apart where several share a host network (the local pod runner gives each
    pod its own loopback address)."""
    http_port: int = DEFAULT_HTTP_PORT
    """Port of the health/metrics server."""

    @field_validator("subscriptions", mode="before")
    @classmethod
    def _subscriptions_from_json(cls, value: object) -> object:
        # The environment can only carry text; a settings dict may give the list itself.
        return json.loads(value) if isinstance(value, str) else value


def env_name(field: str) -> str:
    """The environment variable carrying ``field`` (of :class:`SidecarConfig` or a subclass)."""
    return ENV_PREFIX + field.upper()


def to_env(config: SidecarConfig) -> dict[str, EnvValue]:
    """Every variable of ``config``, in field order: literal text, or the source the kubelet reads."""
    dumped = config.model_dump(mode="json", by_alias=True)
    return {env_name(name): _source(field) or _text(dumped[name]) for name, field in SidecarConfig.model_fields.items()}


_SUBSCRIPTIONS = TypeAdapter(tuple[ConsumerSpec, ...])


def dumps(specs: Sequence[ConsumerSpec]) -> str:
    """The subscriptions variable for ``specs``, for running a sidecar without the operator."""
    return _text(_SUBSCRIPTIONS.dump_python(tuple(specs), mode="json", by_alias=True))


def _source(field: FieldInfo) -> SecretKey | PodField | None:
    return next((m for m in field.metadata if isinstance(m, SecretKey | PodField)), None)


def _text(value: JsonValue) -> str:
    # Text as it is; numbers and the subscriptions as compact JSON, which the parsing side reads back.
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def build(
    *,
    cluster: str,
    namespace: str,
    subscription: str,
    events: list[str],
    max_attempts: int,
    initial_backoff_ms: int,
    max_backoff_ms: int,
    dead_letter: bool,
    prefetch: int,
    batch: int = 1,
    queue_type: str = "quorum",
) -> ConsumerSpec:
    delays = tuple(retry.backoff_delays(max_attempts, initial_backoff_ms, max_backoff_ms))
    return ConsumerSpec(
        subscription=subscription,
        queue=naming.queue_name(cluster, namespace, subscription),
        events=tuple(events),
        maxAttempts=max_attempts,
        retryDelaysMs=delays,
        # One per step, repeated where the backoff caps: ``retry_target`` indexes it by attempt.
        retryExchanges=tuple(naming.delay_name(cluster, queue_type, delay) for delay in delays),
        deadLetter=dead_letter,
        prefetch=prefetch,
        batch=batch,
    )


def for_subscription(*, cluster: str, namespace: str, subscription: str, spec: SyncSubscriptionSpec) -> ConsumerSpec:
    """The consumer contract of a SyncSubscription, consistent with ``desired.desired_topology``."""
    return build(
        cluster=cluster,
        namespace=namespace,
        subscription=subscription,
        events=list(spec.events),
        max_attempts=spec.retry.max_attempts,
        initial_backoff_ms=spec.retry.initial_backoff_ms,
        max_backoff_ms=spec.retry.max_backoff_ms,
        dead_letter=spec.dead_letter,
        prefetch=spec.prefetch,
        batch=spec.batch,
        queue_type=spec.queue_type,
    )
