"""Which of the sidecar's queues are being consumed, and when a missing one is tried again.

Each queue is consumed on a channel of its own (:class:`rabbitsync.transport.Session`), so a queue
that is missing (not declared yet, deleted by hand, its node away) stops that subscription only:
it is tried again with jittered, capped backoff of its own while the others go on. Pure
bookkeeping, with the clock injected, so the schedule is unit-tested without a broker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from rabbitsync.backoff import Backoff
from rabbitsync.topology.sidecar_contract import ConsumerSpec

_INITIAL_RETRY = 0.5
"""Seconds before a missing queue is first tried again; doubles up to the reconnect cap."""


class Subscriptions:
    def __init__(
        self, specs: Sequence[ConsumerSpec], *, cap: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._specs = list(specs)
        self._clock = clock
        self._up: set[str] = set()
        self._retry_at = {spec.queue: 0.0 for spec in specs}
        self._backoffs = {spec.queue: Backoff(initial=min(_INITIAL_RETRY, cap), cap=cap) for spec in specs}

    def due(self) -> list[ConsumerSpec]:
        """The subscriptions not consumed whose next try is now."""
        now = self._clock()
        return [s for s in self._specs if s.queue not in self._up and self._retry_at[s.queue] <= now]

    def up(self, queue: str) -> None:
        self._up.add(queue)
        self._backoffs[queue].reset()

    def down(self, queue: str) -> float:
        """``queue`` stopped being consumed: seconds until it is tried again."""
        self._up.discard(queue)
        delay = self._backoffs[queue].next()
        self._retry_at[queue] = self._clock() + delay
        return delay

    def consuming(self, queue: str) -> bool:
        return queue in self._up

    def all_up(self) -> bool:
        return len(self._up) == len(self._specs)
