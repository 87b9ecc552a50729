"""SyncSubscriptions and SyncPublications as the CLI shows them: a lenient, pure view of raw objects.

Lenient on purpose: the CLI may be a version ahead of or behind the operator that wrote a status, so
it reads the fields it knows and ignores the rest (the strict models in ``rabbitsync.api`` refuse
unknown fields, which is right for the operator and wrong for a debugging tool).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rabbitsync.api import READY, SIDECAR_INJECTED
from rabbitsync.topology import naming

SUBSCRIPTION = "SyncSubscription"
PUBLICATION = "SyncPublication"


@dataclass(frozen=True)
class Condition:
    status: str
    reason: str | None
    message: str | None


@dataclass(frozen=True)
class Resource:
    """One SyncSubscription or SyncPublication in one cluster."""

    kind: str
    cluster: str
    """The cluster's label on the command line (its kubeconfig context)."""
    namespace: str
    name: str
    service: str
    events: tuple[str, ...]
    broker: str
    ready: Condition | None
    sidecar: Condition | None
    status: Mapping[str, Any]

    @property
    def is_ready(self) -> bool:
        return self.ready is not None and self.ready.status == "True"

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def broker_cluster(self) -> str | None:
        """The cluster name the operator uses on the broker, read back from ``status.queue``."""
        queue = self.status.get("queue")
        tail = f".{self.namespace}.{self.name}"
        head = f"{naming.PREFIX}."
        if isinstance(queue, str) and queue.startswith(head) and queue.endswith(tail):
            return queue[len(head) : -len(tail)] or None
        return None

    def owned_queues(self, cluster: str) -> set[str]:
        """The queue names this subscription owns: from its status, and as ``naming`` derives them."""
        if self.kind != SUBSCRIPTION:
            return set()
        main = naming.queue_name(cluster, self.namespace, self.name)
        found = {main, naming.dead_letter_queue_name(main)}
        for key in ("queue", "deadLetterQueue"):
            if isinstance(self.status.get(key), str):
                found.add(self.status[key])
        found.update(q for q in self.status.get("retryQueues") or [] if isinstance(q, str))
        return found


def parse(kind: str, cluster: str, obj: Mapping[str, Any]) -> Resource:
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, Mapping)}
    return Resource(
        kind=kind,
        cluster=cluster,
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        service=str(spec.get("service", "")),
        events=tuple(str(e) for e in spec.get("events") or []),
        broker=str(spec.get("broker") or "default"),
        ready=_condition(conditions.get(READY)),
        sidecar=_condition(conditions.get(SIDECAR_INJECTED)),
        status=status,
    )


def _condition(raw: Mapping[str, Any] | None) -> Condition | None:
    if raw is None:
        return None
    return Condition(status=str(raw.get("status", "Unknown")), reason=raw.get("reason"), message=raw.get("message"))
