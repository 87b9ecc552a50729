"""Turn a reconcile's observations into conditions and the Events that announce their transitions.

Pure: given the previous status and what was just observed, it returns the new conditions and the
Events to emit. An Event is emitted exactly when a condition's status flips, or when it first appears
saying something is wrong, so a resync that changes nothing is silent. A new object's conditions all
appear at once: those that appear True are said by one Event, Ready's, not one each (at 300
subscriptions created together, 5.6 Events each were a third of the API server's requests).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from rabbitsync.api.conditions import READY, Condition, ConditionStatus, get_condition, set_condition


@dataclass(frozen=True)
class Note:
    """A Kubernetes Event to emit on the object."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Observation:
    """One condition as just observed."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""


def apply(
    previous: Sequence[Condition], observations: Sequence[Observation], *, generation: int | None, now: datetime
) -> tuple[list[Condition], list[Note]]:
    conditions = list(previous)
    notes: list[Note] = []
    for obs in observations:
        before = get_condition(conditions, obs.type)
        new = Condition(
            type=obs.type, status=obs.status, reason=obs.reason, message=obs.message, observed_generation=generation
        )
        conditions = set_condition(conditions, new, now)
        if _announced(before, obs):
            kind: Literal["Normal", "Warning"] = "Normal" if obs.status == "True" else "Warning"
            notes.append(Note(kind, obs.reason, f"{obs.type}={obs.status}: {obs.message}".rstrip(": ")))
    return conditions, notes


def _announced(before: Condition | None, now: Observation) -> bool:
    if before is not None:
        return before.status != now.status
    return now.status != "True" or now.type == READY


def conditions_of(status: Mapping[str, Any]) -> list[Condition]:
    """The conditions recorded in an object's ``status``."""
    return [Condition.model_validate(c) for c in status.get("conditions", [])]


def dump(conditions: Sequence[Condition]) -> list[dict[str, object]]:
    return [c.model_dump(by_alias=True, exclude_none=True) for c in conditions]
