"""What a reconcile reads of its object, and what it or a cleanup hands back: status, Events, the retry decision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from rabbitsync.operator import status as st


@dataclass(frozen=True)
class ObjectView:
    """The parts of a reconciled object every reconcile reads: which object, and what its status said."""

    namespace: str
    name: str
    generation: int | None
    status: Mapping[str, Any]


@dataclass(frozen=True)
class SpecView(ObjectView):
    """An object whose spec stays raw until used: one the model refuses must become a condition (or, on
    deletion, a released finalizer), not an exception in the handler."""

    raw_spec: Mapping[str, Any]
    uid: str = ""

    @classmethod
    def from_body(
        cls, namespace: str, name: str, meta: Mapping[str, Any], spec: Mapping[str, Any], status: Mapping[str, Any]
    ) -> Self:
        return cls(
            namespace=namespace,
            name=name,
            generation=meta.get("generation"),
            status=status,
            raw_spec=spec,
            uid=str(meta.get("uid") or ""),
        )


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
    obj: ObjectView,
    observations: Sequence[st.Observation],
    *,
    now: datetime,
    fields: Mapping[str, Any] | None = None,
    notes: Sequence[st.Note] = (),
    temporary_failure: str | None = None,
) -> ReconcileOutcome:
    """The outcome of ``observations`` on ``obj``: its new status, and Events for the transitions."""
    conditions, transitions = st.apply(st.conditions_of(obj.status), observations, generation=obj.generation, now=now)
    status = {**(fields or {}), "observedGeneration": obj.generation, "conditions": st.dump(conditions)}
    return ReconcileOutcome(status=status, notes=[*transitions, *notes], temporary_failure=temporary_failure)
