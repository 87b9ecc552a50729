"""What a reconcile or a cleanup hands back to its kopf handler: status, Events and the retry decision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rabbitsync.operator import status as st


@dataclass
class ReconcileOutcome:
    status: dict[str, Any]
    """The object's new ``status`` (camelCase, ready to patch)."""
    notes: list[st.Note] = field(default_factory=list)
    """Events to post."""
    temporary_failure: str | None = None
    """Set when retrying soon can help; the message says why."""


@dataclass
class CleanupOutcome:
    done: bool
    """False: retry later, the finalizer stays."""
    notes: list[st.Note]


def conclude(
    previous: Mapping[str, Any],
    generation: int | None,
    observations: Sequence[st.Observation],
    *,
    now: datetime,
    fields: Mapping[str, Any] | None = None,
    notes: Sequence[st.Note] = (),
    temporary_failure: str | None = None,
) -> ReconcileOutcome:
    """The outcome of ``observations`` on an object whose status was ``previous``: transitions become Events."""
    conditions, transitions = st.apply(st.conditions_of(previous), observations, generation=generation, now=now)
    status = {**(fields or {}), "observedGeneration": generation, "conditions": st.dump(conditions)}
    return ReconcileOutcome(status=status, notes=[*transitions, *notes], temporary_failure=temporary_failure)
