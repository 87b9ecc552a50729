"""Status conditions, keyed by ``type``, following the Kubernetes ``metav1.Condition`` shape.

``lastTransitionTime`` must say when the status last *flipped*, not when the operator last looked:
``set_condition`` is the one place that rule lives, kept pure so it is tested without a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field
from pydantic.config import JsonDict

from rabbitsync.api.meta import ApiModel, PrinterColumn

ConditionStatus = Literal["True", "False", "Unknown"]

# The condition types the operator sets; others may appear (e.g. added by later components).
READY = "Ready"
BROKER_REACHABLE = "BrokerReachable"
TOPOLOGY_SYNCED = "TopologySynced"
SIDECAR_INJECTED = "SidecarInjected"
CREDENTIALS_READY = "CredentialsReady"

READY_PATH = '.status.conditions[?(@.type=="Ready")]'
"""JSONPath of the Ready condition, for printer columns."""

CONDITIONS_LIST: JsonDict = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
"""Schema extension of a ``conditions`` list: keyed by ``type``, so server-side apply merges by type."""


class Condition(ApiModel):
    """One aspect of the resource's state, as observed by the operator."""

    type: str = Field(
        description="Which aspect this condition reports, e.g. Ready, BrokerReachable, TopologySynced.",
        pattern=r"^[A-Za-z][A-Za-z0-9]*$",
        max_length=64,
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        description="Machine-readable CamelCase reason for the last transition or the current state.",
        max_length=128,
    )
    message: str = Field(default="", description="Human-readable details.", max_length=4096)
    last_transition_time: str | None = Field(
        default=None,
        description="When the status last changed (RFC 3339), not when it was last checked.",
        json_schema_extra={"format": "date-time"},
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation this condition was computed from."
    )


class ObservedStatus(ApiModel):
    """The start of every kind's status: the generation it describes (its ``conditions`` follow, from
    :func:`conditions_field`)."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation the status was computed from."
    )


def conditions_field(types: str) -> Any:
    """A status's ``conditions`` field; ``types`` names the condition types the operator sets there."""
    return Field(
        default_factory=list,
        description=f"Latest observations, keyed by type ({types}).",
        json_schema_extra=CONDITIONS_LIST,
    )


def ready_columns(ready: str) -> tuple[PrinterColumn, PrinterColumn]:
    """The Ready and Reason printer columns; ``ready`` says what Ready means for the kind."""
    return (
        PrinterColumn("Ready", "string", f"{READY_PATH}.status", ready),
        PrinterColumn("Reason", "string", f"{READY_PATH}.reason", "Why (not) ready."),
    )


def format_time(now: datetime) -> str:
    """RFC 3339 in UTC with second precision, as the API server renders timestamps."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(conditions: Sequence[Condition], new: Condition, now: datetime) -> list[Condition]:
    """Return ``conditions`` with ``new`` replacing the one of its type, or appended; inputs unchanged.

    ``new.last_transition_time`` is ignored: it becomes ``now`` only when the status differs from the
    previous one (or the condition is new); a change of reason or message alone keeps the old time.
    """
    previous = get_condition(conditions, new.type)
    since = format_time(now)
    if previous is not None and previous.status == new.status and previous.last_transition_time:
        since = previous.last_transition_time
    new = new.model_copy(update={"last_transition_time": since})
    if previous is None:
        return [*conditions, new]
    return [new if c.type == new.type else c for c in conditions]


def get_condition(conditions: Sequence[Condition], type: str) -> Condition | None:
    return next((c for c in conditions if c.type == type), None)
