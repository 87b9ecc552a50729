"""Service users this process put lately, so that an identical one is not put again at once.

A service's user is recomputed by every reconcile of each of its declarations (its rights follow
them), and putting it takes five management calls. A hundred subscriptions of one service created
together put the same user a hundred times: at 1,000 subscriptions up to 9 of the operator's 16
workers were in ``put_user`` at once. A user equal to the one put on the same broker less than
``fresh_seconds`` ago is skipped; a changed one (rights, password, limits) is put at once; once
``fresh_seconds`` have passed it is put again, which restores a user deleted out of band.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rabbitsync.amqp.identity import BrokerUser


class RecentUsers:
    def __init__(self, fresh_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._fresh = fresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._put: dict[tuple[str, str], tuple[BrokerUser, float]] = {}
        """(broker, username) -> the user as last put there, and when."""

    def current(self, broker: str, user: BrokerUser) -> bool:
        """Whether ``user`` is exactly what was put on ``broker`` less than ``fresh_seconds`` ago."""
        with self._lock:
            found = self._put.get((broker, user.username))
        return found is not None and found[0] == user and self._clock() - found[1] < self._fresh

    def put(self, broker: str, user: BrokerUser) -> None:
        """``user`` was put on ``broker`` just now."""
        with self._lock:
            self._put[broker, user.username] = (user, self._clock())

    def forget(self, broker: str, username: str) -> None:
        """``username`` may not be on ``broker`` as last put (deleted, or a put failed half-way)."""
        with self._lock:
            self._put.pop((broker, username), None)
