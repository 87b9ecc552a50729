"""What the operator keeps in kopf's in-memory indexes, so that no reconcile lists a namespace.

kopf fills the indexes from the watch streams it already runs on our kinds (the brokers, the
subscriptions and publications),
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
PUBLICATIONS_BY_SERVICE = "rabbitsync_publications_by_service"
"""Index id (and handler kwarg): live SyncPublications by (namespace, spec.service)."""
CLUSTER_SYNC_BROKERS = "rabbitsync_cluster_sync_brokers"
"""Index id (and handler kwarg): ClusterSyncBrokers by ("", name)."""

Key = tuple[str, str]


@dataclass(frozen=True)
class IndexedBroker:
    spec: Mapping[str, Any]
    deleting: bool
    """Kept rather than dropped, so that a reference to it says why it may not be used."""


@dataclass(frozen=True)
class IndexedSubscription:
    """A live SyncSubscription or SyncPublication (both index the same way, by their service)."""

    name: str
    spec: Mapping[str, Any]
    uid: str = ""


BrokerIndex = Mapping[Key, Collection[IndexedBroker]]
SubscriptionIndex = Mapping[Key, Collection[IndexedSubscription]]


def sync_brokers(body: Mapping[str, Any], **_: Any) -> dict[Key, IndexedBroker]:
    meta = body["metadata"]
    entry = IndexedBroker(_spec(body), deleting=bool(meta.get("deletionTimestamp")))
    # A ClusterSyncBroker has no namespace: it is keyed ("", name).
    return {(meta.get("namespace") or "", meta["name"]): entry}


def subscriptions_by_service(body: Mapping[str, Any], **_: Any) -> dict[Key, IndexedSubscription]:
    meta, spec = body["metadata"], _spec(body)
    service = spec.get("service")
    if meta.get("deletionTimestamp") or not isinstance(service, str):
        return {}
    return {(meta["namespace"], service): IndexedSubscription(meta["name"], spec, str(meta.get("uid") or ""))}


def _spec(body: Mapping[str, Any]) -> dict[str, Any]:
    # Plain JSON detached from kopf's body view: the index outlives the event that carried it.
    return copy.deepcopy(dict(body.get("spec") or {}))
