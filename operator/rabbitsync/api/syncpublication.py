"""SyncPublication: "service X publishes event types A, B", the declaration a service's publishing rights come from.

The operator turns the publications of a service into the topic permissions of its broker user: the
broker itself refuses any other routing key from that service's credentials, so a type nobody declared
cannot be published, and every receiver knows which service may send which type.
"""

from __future__ import annotations

from pydantic import Field

from rabbitsync.api.conditions import Condition, ObservedStatus, conditions_field, ready_columns
from rabbitsync.api.meta import AGE_COLUMN, LABEL_NAME_RULE, ApiModel, ApiObject, PrinterColumn, ResourceInfo
from rabbitsync.api.service import broker_field, events_field, service_field
from rabbitsync.conventions import EventType


class SyncPublicationSpec(ApiModel):
    """Which service publishes which event types on which broker."""

    service: str = service_field("publishes")
    events: list[EventType] = events_field(
        "Event types the service may publish, at least one, no duplicates. They become the topic "
        "permissions (routing keys `<namespace>.<type>`) of the service's broker user."
    )
    broker: str = broker_field(
        "Name of the broker: a SyncBroker in the same namespace if there is one, else the "
        "ClusterSyncBroker of that name (if it allows this namespace). Immutable."
    )


class SyncPublicationStatus(ObservedStatus):
    """What the operator last set up on the broker for the publishing service."""

    conditions: list[Condition] = conditions_field("Ready, BrokerReachable, CredentialsReady, SidecarInjected")
    user: str | None = Field(default=None, description="The service's broker user (AMQP user_id of its events).")
    secret: str | None = Field(default=None, description="The Secret holding the service's broker credentials.")


class SyncPublication(ApiObject[SyncPublicationSpec, SyncPublicationStatus]):
    """A SyncPublication object as read from the API server."""

    kind: str = Field(default="SyncPublication", description="SyncPublication")


RESOURCE = ResourceInfo(
    kind="SyncPublication",
    plural="syncpublications",
    short_names=("spub", "spubs"),
    description=(
        "SyncPublication declares that a service publishes some event types. The operator gives the "
        "service's own broker user the right to publish exactly these types (in this namespace) and "
        "runs the sidecar that sends the service's outbox."
    ),
    printer_columns=(
        PrinterColumn("Service", "string", ".spec.service", "Deployment publishing the events."),
        PrinterColumn("Events", "string", ".spec.events", "Event types it may publish."),
        *ready_columns("Credentials and rights in place on the broker."),
        PrinterColumn("User", "string", ".status.user", "The service's broker user.", priority=1),
        PrinterColumn("Secret", "string", ".status.secret", "Secret with the service's credentials.", priority=1),
        AGE_COLUMN,
    ),
    # Its name only names the object, but one rule for both kinds keeps `kubectl apply` predictable.
    root_validations=(LABEL_NAME_RULE,),
)
