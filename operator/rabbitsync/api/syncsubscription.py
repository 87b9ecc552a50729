"""SyncSubscription: "service X consumes event types A, B", the resource platform engineers apply.

Fields that shape a queue's arguments are immutable (CEL ``self == oldSelf``): RabbitMQ cannot change
a queue's arguments in place, so changing them would otherwise be a silent mismatch. Fields that only
shape names (retry backoff names its delay queues) or bindings (events) stay mutable.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from rabbitsync.api.conditions import CONDITIONS_LIST, READY_PATH, Condition
from rabbitsync.api.meta import (
    API_VERSION,
    DNS1123_LABEL,
    DNS1123_SUBDOMAIN,
    LABEL_NAME_RULE,
    ApiModel,
    PrinterColumn,
    ResourceInfo,
    immutable,
)
from rabbitsync.conventions import EventType

MAX_EVENTS = 64

QueueType = Literal["quorum", "classic"]
DeletionPolicy = Literal["delete", "retain"]


class RetryPolicy(ApiModel):
    """How often and how late a failed delivery is tried again before it is dead-lettered."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "self.initialBackoffMs <= self.maxBackoffMs",
                    "message": "initialBackoffMs must not exceed maxBackoffMs",
                    "fieldPath": ".initialBackoffMs",
                }
            ]
        }
    }

    max_attempts: int = Field(
        default=5,
        ge=1,
        le=50,
        description="Deliveries in total, counting the first one; 1 means never retry.",
    )
    initial_backoff_ms: int = Field(
        default=1_000,
        ge=100,
        le=3_600_000,
        description="Delay before the second attempt, in milliseconds; each further delay doubles.",
    )
    max_backoff_ms: int = Field(
        default=60_000,
        ge=100,
        le=86_400_000,
        description="Cap on the delay between attempts, in milliseconds. Each distinct delay is a queue.",
    )


class SyncSubscriptionSpec(ApiModel):
    """Which service consumes which event types, and how failed deliveries are handled."""

    service: str = Field(
        description="Name of the Deployment (same namespace) that consumes the events; a DNS-1123 label.",
        min_length=1,
        max_length=63,
        pattern=DNS1123_LABEL,
    )
    events: list[EventType] = Field(
        min_length=1,
        max_length=MAX_EVENTS,
        description=(
            "Event types to consume, at least one, no duplicates. Each is bound as a routing key on the "
            "broker's exchange; changing the list binds and unbinds exactly the difference."
        ),
        # "set" makes the API server refuse duplicates; CRD schemas may not use uniqueItems.
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    broker: str = Field(
        default="default",
        description="Name of the SyncBroker in the same namespace to use. Immutable.",
        min_length=1,
        max_length=253,
        pattern=DNS1123_SUBDOMAIN,
        json_schema_extra=immutable("broker"),
    )
    deletion_policy: DeletionPolicy = Field(
        default="delete",
        description="On deletion of this resource: delete its queues on the broker, or retain them.",
    )
    retry: RetryPolicy = Field(
        default_factory=RetryPolicy,
        description="Retry policy for deliveries the handler fails.",
        # The whole default object, not {}: the API server checks defaults against the CEL rule before
        # applying nested defaults, and {} has no keys for it to compare.
        json_schema_extra={"default": {"maxAttempts": 5, "initialBackoffMs": 1_000, "maxBackoffMs": 60_000}},
    )
    dead_letter: bool = Field(
        default=True,
        description=(
            "After the last attempt, park the event in the dead-letter queue (true) or drop it (false). "
            "The dead-letter queue exists either way, so toggling never changes queue arguments."
        ),
    )
    prefetch: int = Field(
        default=10, ge=1, le=1000, description="Deliveries the consumer may hold unacknowledged at once."
    )
    batch: int = Field(
        default=1,
        ge=1,
        le=1000,
        description=(
            "Deliveries the sidecar applies in one database transaction (each event in a savepoint of its "
            "own, so a failing one is retried alone) and acknowledges with one ack; at most prefetch are "
            "taken. 1 applies and acks them one by one."
        ),
    )
    queue_type: QueueType = Field(
        default="quorum",
        description="RabbitMQ queue type of all the subscription's queues. Immutable.",
        json_schema_extra=immutable("queueType"),
    )


class SyncSubscriptionStatus(ApiModel):
    """What the operator last verified on the broker."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation the status was computed from."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Latest observations, keyed by type (Ready, BrokerReachable, TopologySynced, ...).",
        json_schema_extra=CONDITIONS_LIST,
    )
    queue: str | None = Field(default=None, description="Broker-side name of the subscription's queue.")
    retry_queues: list[str] = Field(
        default_factory=list, description="Broker-side names of the delay queues, shortest delay first."
    )
    dead_letter_queue: str | None = Field(default=None, description="Broker-side name of the DLQ.")
    exchange: str | None = Field(default=None, description="Exchange the queue is bound to.")
    queue_depth: int | None = Field(default=None, ge=0, description="Messages in the queue.")
    consumers: int | None = Field(default=None, ge=0, description="Consumers attached to the queue.")
    dead_lettered: int | None = Field(default=None, ge=0, description="Messages in the dead-letter queue.")
    event_count: int | None = Field(default=None, ge=0, description="Event types consumed (len(spec.events)).")


class SyncSubscription(ApiModel):
    """A SyncSubscription object as read from the API server (metadata left as a plain mapping)."""

    api_version: str = Field(default=API_VERSION, description="rabbitsync.io/v1alpha1")
    kind: str = Field(default="SyncSubscription", description="SyncSubscription")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")
    spec: SyncSubscriptionSpec = Field(description="Desired state.")
    status: SyncSubscriptionStatus | None = Field(default=None, description="Observed state.")


RESOURCE = ResourceInfo(
    kind="SyncSubscription",
    plural="syncsubscriptions",
    short_names=("ssub", "ssubs"),
    description=(
        "SyncSubscription declares that a service consumes some event types. The operator keeps a durable "
        "queue (named from cluster, namespace and name), retry delay queues, a dead-letter queue and one "
        "binding per event type on the shared broker, and runs a consumer sidecar next to the service."
    ),
    printer_columns=(
        PrinterColumn("Service", "string", ".spec.service", "Deployment consuming the events."),
        PrinterColumn("Events", "integer", ".status.eventCount", "Number of event types consumed."),
        PrinterColumn(
            "Ready",
            "string",
            f"{READY_PATH}.status",
            "Events will be consumed: topology verified, sidecar injected, a consumer attached.",
        ),
        PrinterColumn("Reason", "string", f"{READY_PATH}.reason", "Why (not) ready."),
        PrinterColumn("Consumers", "integer", ".status.consumers", "Consumers on the queue."),
        PrinterColumn("Queue depth", "integer", ".status.queueDepth", "Messages waiting in the queue."),
        PrinterColumn("Message", "string", f"{READY_PATH}.message", "What is wrong, if anything.", priority=1),
        PrinterColumn("Queue", "string", ".status.queue", "Broker-side queue name.", priority=1),
        PrinterColumn("Dead", "integer", ".status.deadLettered", "Messages dead-lettered.", priority=1),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation."),
    ),
    root_validations=(LABEL_NAME_RULE,),
)
