"""SyncSubscription: "service X consumes event types A, B", the resource platform engineers apply.

Fields that shape a queue's arguments are immutable (CEL ``self == oldSelf``): RabbitMQ cannot change
a queue's arguments in place, so changing them would otherwise be a silent mismatch. Fields that only
shape names (retry backoff names its delay queues) or bindings (events) stay mutable.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rabbitsync.api.conditions import READY_PATH, Condition, ObservedStatus, conditions_field, ready_columns
from rabbitsync.api.meta import AGE_COLUMN, LABEL_NAME_RULE, ApiModel, ApiObject, PrinterColumn, ResourceInfo, immutable
from rabbitsync.api.service import broker_field, events_field, service_field
from rabbitsync.conventions import EventType

QueueType = Literal["quorum", "classic"]
DeletionPolicy = Literal["delete", "retain"]
BackfillPolicy = Literal["none", "onCreate"]

BACKFILL_ANNOTATION = "rabbitsync.io/backfill"
"""Set to any new value (``kubectl annotate``, ``rabbitsync backfill``) to ask for a backfill now."""
BACKFILL_COMPLETE = "BackfillComplete"
"""The condition reporting the last backfill asked for."""


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

    service: str = service_field("consumes")
    events: list[EventType] = events_field(
        "Event types to consume, at least one, no duplicates. Each is bound as a routing key on the "
        "broker's exchange; changing the list binds and unbinds exactly the difference."
    )
    broker: str = broker_field("Name of the SyncBroker in the same namespace to use. Immutable.")
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
    backfill: BackfillPolicy = Field(
        default="none",
        description=(
            "Whether the service gets the current state of its event types, not only future events. "
            "onCreate: when the subscription is first set up, the publishers of its types (SyncPublications "
            "of this cluster, else of the other cluster) send a snapshot of their entities, tombstones "
            "included, to this subscription's queue only; status.backfill and the BackfillComplete "
            "condition follow it. none (the default: a snapshot reads the publisher's whole table): only "
            "future events. Either way, annotate the subscription with rabbitsync.io/backfill=<any new "
            "value> (or run `rabbitsync backfill NAMESPACE/NAME`) for a backfill at any time, e.g. after "
            "restoring the service's database."
        ),
    )


class BackfillRequestStatus(ApiModel):
    """One publisher's part of a backfill."""

    publisher: str = Field(description="The publishing service's broker user (rabbitsync.<cluster>.<ns>.<service>).")
    types: list[str] = Field(default_factory=list, description="Event types it was asked for.")
    request: str = Field(description="Id of the request put in its request queue.")
    sent: int | None = Field(default=None, ge=0, description="Events its snapshot run sent (known at its end).")
    applied: int | None = Field(default=None, ge=0, description="Events of that run the service applied.")
    complete: bool = Field(default=False, description="Every event of the run applied, as the sidecar reported.")


class BackfillStatus(ApiModel):
    """The last backfill asked for: by spec.backfill (onCreate) or the rabbitsync.io/backfill annotation."""

    trigger: str = Field(description="onCreate, or the value of the rabbitsync.io/backfill annotation that asked.")
    phase: Literal["Pending", "Running", "Complete"] = Field(
        description="Pending: no request sent yet (see BackfillComplete); Running: requests sent; Complete."
    )
    requested_at: str | None = Field(default=None, description="When it was asked for (RFC 3339).")
    completed_at: str | None = Field(default=None, description="When the last run was reported complete.")
    sent: int = Field(default=0, ge=0, description="Snapshot events sent so far, over all publishers.")
    applied: int = Field(default=0, ge=0, description="Snapshot events applied so far, over all publishers.")
    missing: list[str] = Field(default_factory=list, description="Types no publisher answers for yet.")
    requests: list[BackfillRequestStatus] = Field(default_factory=list, description="One entry per publisher asked.")


class SyncSubscriptionStatus(ObservedStatus):
    """What the operator last verified on the broker."""

    conditions: list[Condition] = conditions_field("Ready, BrokerReachable, TopologySynced, ...")
    queue: str | None = Field(default=None, description="Broker-side name of the subscription's queue.")
    retry_queues: list[str] = Field(
        default_factory=list,
        description=(
            "Broker-side names of the delay queues its retries wait in, shortest delay first (the cluster's, "
            "shared by its subscriptions)."
        ),
    )
    retiring_queues: list[str] = Field(
        default_factory=list,
        description=(
            "Delay queues of this subscription's own (declared by releases before shared delay queues), kept "
            "until they are empty and the service's pods all publish into the shared ones."
        ),
    )
    dead_letter_queue: str | None = Field(default=None, description="Broker-side name of the DLQ.")
    exchange: str | None = Field(default=None, description="Exchange the queue is bound to.")
    queue_depth: int | None = Field(default=None, ge=0, description="Messages in the queue.")
    consumers: int | None = Field(default=None, ge=0, description="Consumers attached to the queue.")
    dead_lettered: int | None = Field(default=None, ge=0, description="Messages in the dead-letter queue.")
    event_count: int | None = Field(default=None, ge=0, description="Event types consumed (len(spec.events)).")
    backfill: BackfillStatus | None = Field(default=None, description="Progress of the last backfill asked for.")


class SyncSubscription(ApiObject[SyncSubscriptionSpec, SyncSubscriptionStatus]):
    """A SyncSubscription object as read from the API server."""

    kind: str = Field(default="SyncSubscription", description="SyncSubscription")


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
        *ready_columns("Events will be consumed: topology verified, sidecar injected, a consumer attached."),
        PrinterColumn("Consumers", "integer", ".status.consumers", "Consumers on the queue."),
        PrinterColumn("Queue depth", "integer", ".status.queueDepth", "Messages waiting in the queue."),
        PrinterColumn("Message", "string", f"{READY_PATH}.message", "What is wrong, if anything.", priority=1),
        PrinterColumn("Queue", "string", ".status.queue", "Broker-side queue name.", priority=1),
        PrinterColumn("Dead", "integer", ".status.deadLettered", "Messages dead-lettered.", priority=1),
        PrinterColumn(
            "Backfill", "string", ".status.backfill.phase", "Last backfill: Pending, Running, Complete.", priority=1
        ),
        AGE_COLUMN,
    ),
    root_validations=(LABEL_NAME_RULE,),
)
