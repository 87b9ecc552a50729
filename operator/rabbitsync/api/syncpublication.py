"""SyncPublication: "service X publishes event types A, B", the declaration a service's publishing rights come from.

The operator turns the publications of a service into the topic permissions of its broker user: the
broker itself refuses any other routing key from that service's credentials, so a type nobody declared
cannot be published, and every receiver knows which service may send which type.
"""

from __future__ import annotations

from typing import Any

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


class SyncPublicationSpec(ApiModel):
    """Which service publishes which event types on which broker."""

    service: str = Field(
        description="Name of the Deployment (same namespace) that publishes the events; a DNS-1123 label.",
        min_length=1,
        max_length=63,
        pattern=DNS1123_LABEL,
    )
    events: list[EventType] = Field(
        min_length=1,
        max_length=MAX_EVENTS,
        description=(
            "Event types the service may publish, at least one, no duplicates. They become the topic "
            "permissions (routing keys `<namespace>.<type>`) of the service's broker user."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    broker: str = Field(
        default="default",
        description=(
            "Name of the broker: a SyncBroker in the same namespace if there is one, else the "
            "ClusterSyncBroker of that name (if it allows this namespace). Immutable."
        ),
        min_length=1,
        max_length=253,
        pattern=DNS1123_SUBDOMAIN,
        json_schema_extra=immutable("broker"),
    )


class SyncPublicationStatus(ApiModel):
    """What the operator last set up on the broker for the publishing service."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation the status was computed from."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Latest observations, keyed by type (Ready, BrokerReachable, CredentialsReady, SidecarInjected).",
        json_schema_extra=CONDITIONS_LIST,
    )
    user: str | None = Field(default=None, description="The service's broker user (AMQP user_id of its events).")
    secret: str | None = Field(default=None, description="The Secret holding the service's broker credentials.")


class SyncPublication(ApiModel):
    """A SyncPublication object as read from the API server (metadata left as a plain mapping)."""

    api_version: str = Field(default=API_VERSION, description="rabbitsync.io/v1alpha1")
    kind: str = Field(default="SyncPublication", description="SyncPublication")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")
    spec: SyncPublicationSpec = Field(description="Desired state.")
    status: SyncPublicationStatus | None = Field(default=None, description="Observed state.")


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
        PrinterColumn("Ready", "string", f"{READY_PATH}.status", "Credentials and rights in place on the broker."),
        PrinterColumn("Reason", "string", f"{READY_PATH}.reason", "Why (not) ready."),
        PrinterColumn("User", "string", ".status.user", "The service's broker user.", priority=1),
        PrinterColumn("Secret", "string", ".status.secret", "Secret with the service's credentials.", priority=1),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation."),
    ),
    # Its name only names the object, but one rule for both kinds keeps `kubectl apply` predictable.
    root_validations=(LABEL_NAME_RULE,),
)
