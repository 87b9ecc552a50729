"""What a consumer sidecar needs to know about one subscription: the operator-sidecar contract.

The operator computes this from a SyncSubscription and hands it to the sidecar as JSON in the
``RABBITSYNC_SUBSCRIPTIONS`` environment variable (a list of these objects). An environment variable,
not a mounted file, so that a change of subscriptions changes the pod template and rolls the pods once.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from rabbitsync.api.syncsubscription import SyncSubscriptionSpec
from rabbitsync.topology import naming, retry

ENV_VAR = "RABBITSYNC_SUBSCRIPTIONS"


class ConsumerSpec(BaseModel):
    """One subscription queue as the sidecar consumes it."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    subscription: str
    queue: str
    events: tuple[str, ...]
    max_attempts: int = Field(alias="maxAttempts", ge=1)
    retry_delays_ms: tuple[int, ...] = Field(
        alias="retryDelaysMs", description="delay before attempt 2, 3, ...; len == maxAttempts - 1"
    )
    dead_letter: bool = Field(alias="deadLetter", default=True)
    prefetch: int = Field(ge=1, default=10)

    def retry_queue(self, attempt: int) -> str:
        """Delay queue a delivery that failed on ``attempt`` (1-based) goes to."""
        return naming.retry_queue_name(self.queue, self.retry_delays_ms[attempt - 1])

    @property
    def dead_letter_queue(self) -> str:
        return naming.dead_letter_queue_name(self.queue)


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
) -> ConsumerSpec:
    return ConsumerSpec(
        subscription=subscription,
        queue=naming.queue_name(cluster, namespace, subscription),
        events=tuple(events),
        maxAttempts=max_attempts,
        retryDelaysMs=tuple(retry.backoff_delays(max_attempts, initial_backoff_ms, max_backoff_ms)),
        deadLetter=dead_letter,
        prefetch=prefetch,
    )


_LIST = TypeAdapter(list[ConsumerSpec])


def dumps(specs: list[ConsumerSpec]) -> str:
    return _LIST.dump_json(specs, by_alias=True).decode()


def loads(text: str) -> list[ConsumerSpec]:
    return _LIST.validate_json(text)


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
    )
