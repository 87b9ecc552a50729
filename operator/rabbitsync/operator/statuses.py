"""The status this process last wrote for each object: what its next reconcile starts from.

kopf hands a handler the body of the last watch event it has processed for the object, and under
load that body lags behind the status patches this same process made. At 1,000 subscriptions the
resync timers were handed bodies without statuses patched minutes before, so they took Ready
subscriptions for unverified ones: each was reconciled every resync interval instead of every
refresh, listed the vhost's queues for delay queues to retire, and derived its Events from
conditions its own earlier reconcile had replaced. The operator is the only writer of these
statuses (one instance: kopf's peering is standalone), so what it last patched is at least as new
as any body; a reconcile starts from that.

Kept in memory per object uid: a restart starts from the stored bodies (kopf's resume handler),
and an object's entry is forgotten once the object is deleted.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from typing import Any


class StatusMemory:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._statuses: dict[str, dict[str, Any]] = {}

    def newest(self, uid: str, stored: Mapping[str, Any]) -> Mapping[str, Any]:
        """``uid``'s status as this process last wrote it; ``stored`` (the body's) if it wrote none yet."""
        written = self.written(uid)
        return stored if written is None else written

    def written(self, uid: str) -> Mapping[str, Any] | None:
        """``uid``'s status as this process last wrote it; None if it wrote none."""
        with self._lock:
            return self._statuses.get(uid)

    def wrote(self, uid: str, previous: Mapping[str, Any], patch: Mapping[str, Any]) -> None:
        """``patch`` was sent for ``uid``, whose reconcile started from ``previous``."""
        # A copy: ``previous`` may be kopf's live body, which kopf updates as watch events arrive.
        merged = copy.deepcopy(merge_patch(previous, patch))
        with self._lock:
            self._statuses[uid] = merged

    def forget(self, uid: str) -> None:
        """Drop ``uid``'s entry: only once the object is gone."""
        with self._lock:
            self._statuses.pop(uid, None)

    def __len__(self) -> int:
        return len(self._statuses)


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``patch`` applied to ``target`` as the API server applies a JSON merge patch (RFC 7386): objects
    merge key by key, None removes a key, anything else (lists included) replaces."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping):
            below = merged.get(key)
            merged[key] = merge_patch(below if isinstance(below, Mapping) else {}, value)
        else:
            merged[key] = value
    return merged
