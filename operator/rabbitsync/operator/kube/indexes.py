"""What the operator keeps in kopf's in-memory indexes, so that no reconcile lists a namespace.

kopf fills the indexes from the watch streams it already runs on SyncBrokers and SyncSubscriptions,
and has them complete before any handler runs. An index function must not fail (kopf would keep a
stale value), so specs are stored raw and validated when read. A subscription being deleted is not
live: returning an empty dict, unlike returning None, removes what was indexed for it before.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

SYNC_BROKERS = "rabbitsync_sync_brokers"
"""Index id (and handler kwarg): SyncBrokers by (namespace, name)."""
SUBSCRIPTIONS_BY_SERVICE = "rabbitsync_subscriptions_by_service"
"""Index id (and handler kwarg): live SyncSubscriptions by (namespace, spec.service)."""

Key = tuple[str, str]


@dataclass(frozen=True)
class IndexedBroker:
    spec: Mapping[str, Any]
    deleting: bool
    """Kept rather than dropped, so that a reference to it says why it may not be used."""


@dataclass(frozen=True)
class IndexedSubscription:
    name: str
    spec: Mapping[str, Any]


BrokerIndex = Mapping[Key, Collection[IndexedBroker]]
SubscriptionIndex = Mapping[Key, Collection[IndexedSubscription]]


def sync_brokers(body: Mapping[str, Any], **_: Any) -> dict[Key, IndexedBroker]:
    meta = body["metadata"]
    entry = IndexedBroker(_spec(body), deleting=bool(meta.get("deletionTimestamp")))
    return {(meta["namespace"], meta["name"]): entry}


def subscriptions_by_service(body: Mapping[str, Any], **_: Any) -> dict[Key, IndexedSubscription]:
    meta, spec = body["metadata"], _spec(body)
    service = spec.get("service")
    if meta.get("deletionTimestamp") or not isinstance(service, str):
        return {}
    return {(meta["namespace"], service): IndexedSubscription(meta["name"], spec)}


def _spec(body: Mapping[str, Any]) -> dict[str, Any]:
    # Plain JSON detached from kopf's body view: the index outlives the event that carried it.
    return copy.deepcopy(dict(body.get("spec") or {}))
