"""The last-writer-wins version: a hybrid-logical-clock-ish integer.

A version is microseconds since the Unix epoch, but never smaller than one more than any version
this clock issued or was told about. Wall-clock time keeps versions from two clusters roughly
comparable; the "+1 over what we have seen" rule (the logical half of an HLC) makes a write that
follows another one win even when this node's wall clock lags behind the other cluster's.
The clock is per process; the per-entity half of the rule is persisted on the row itself, see
``rabbitsync.django.lww.next_version``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class VersionClock:
    """Issues strictly increasing versions, thread-safe."""

    def __init__(self, now_us: Callable[[], int] | None = None) -> None:
        self._now_us = now_us or (lambda: time.time_ns() // 1000)
        self._last = 0
        self._lock = threading.Lock()

    def tick(self, observed: int | None = None) -> int:
        """A fresh version, greater than every version issued so far and than ``observed``."""
        with self._lock:
            floor = self._last if observed is None else max(self._last, observed)
            self._last = max(self._now_us(), floor + 1)
            return self._last


# One clock per process; creating it reads no clock and opens nothing.
default_clock = VersionClock()
