"""When each object's next full reconcile is due, so that a resync timer can skip a Ready one's turn.

A Ready subscription is compared with the broker by the drift sweep every resync interval; its own
full reconcile (credentials, sidecar, counts) is needed only every ``refresh_seconds``. Subscriptions
are often created together (an install, a namespace applied at once): refreshing each exactly
``refresh_seconds`` after the last would bring them all back in the same timer tick, a burst of
1,000 reconciles every ten minutes. Each object's next refresh is instead drawn uniformly from half
to one and a half intervals after its last: the same average rate, spread out within a few periods.

The schedule is kept per object uid, in memory (a restart reconciles everything on resume anyway),
and forgotten when the object is deleted: an operator that lives for months while subscriptions
come and go must not keep one entry per object it ever saw.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable


def spread(interval: float, rng: Callable[[], float] = random.random) -> float:
    """A delay drawn uniformly from ``[interval / 2, 3 * interval / 2)``: on average ``interval``."""
    return interval * (0.5 + rng())


class RefreshSchedule:
    def __init__(self, interval: float, rng: Callable[[], float] = random.random) -> None:
        self._interval = interval
        self._rng = rng
        self._lock = threading.Lock()
        self._due: dict[str, float] = {}
        """uid -> monotonic time its next full reconcile is due."""

    def done(self, uid: str, now: float) -> None:
        """``uid`` was reconciled in full at ``now``."""
        with self._lock:
            self._due[uid] = now + spread(self._interval, self._rng)

    def due(self, uid: str, now: float) -> bool:
        """Whether ``uid``'s next full reconcile is due (never reconciled in full: due)."""
        with self._lock:
            return now >= self._due.get(uid, now)

    def forget(self, uid: str) -> None:
        with self._lock:
            self._due.pop(uid, None)

    def __len__(self) -> int:
        return len(self._due)
