"""Worker threads that apply events off the I/O thread, in order per lane, in batches.

The consume loop (:mod:`rabbitsync.sidecar.consumer`) owns the connection and must keep serving
it (heartbeats, deliveries, acks) however long a handler runs, so handlers run here. Each lane is
one thread with a FIFO of its own; an item's lane is chosen from its key (the event's subject), so
events for the same entity always go through the same lane, one batch at a time, in the order they
were received: they can never be applied out of order, whatever the number of lanes. One lane is
the default (SQLite has one writer anyway); more are for databases with concurrent writers.

A lane takes up to ``batch(head)`` waiting items at once and hands them to ``run``, which returns one
result per item it got through. Fewer results than items mean the next item hit an outage (the
database cannot be reached): that item and those behind it stay at the head of the lane, and the
lane stops taking work until the loop calls :meth:`Lanes.resume` (retry them) or
:meth:`Lanes.drop_head` (that item is the handler's failure after all). Either way its order holds.

The loop is told of each finished batch through :meth:`Lanes.finished` and ``wake``; it never
waits on a lane. Pure threading, no broker or database: unit-tested with plain functions.
"""

from __future__ import annotations

import collections
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Finished(Generic[T, R]):
    """A batch a lane went through: ``results`` for the first ``len(results)`` of ``items``."""

    lane: int
    items: list[T]
    results: list[R]
    outage: BaseException | None = None
    """Why the lane stopped before the rest (the first item not in ``results`` hit it), or ``None``."""
    at: float = field(default_factory=time.monotonic)
    """When the batch ended (``time.monotonic()``): an outage met before the database came back is retried."""


@dataclass
class _Lane(Generic[T]):
    waiting: collections.deque[T] = field(default_factory=collections.deque)
    busy: bool = False
    blocked: bool = False
    started: float | None = None


Runner = Callable[[list[T], Callable[[], None]], tuple[list[R], BaseException | None]]
"""``run(items, tick)``: results for a prefix of ``items`` and the outage that stopped it, if any.
``tick()`` before each item restarts the lane's handler clock."""


class Lanes(Generic[T, R]):
    def __init__(
        self,
        count: int,
        run: Runner[T, R],
        *,
        batch: Callable[[T], int],
        wake: Callable[[], None],
        finish: Callable[[], None] = lambda: None,
        name: str = "rabbitsync-handler",
    ) -> None:
        if count < 1:
            raise ValueError("at least one lane")
        self._batch = batch
        self._run = run
        self._wake = wake
        self._finish = finish
        self._lanes = [_Lane[T]() for _ in range(count)]
        self._finished: collections.deque[Finished[T, R]] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, args=(i,), name=f"{name}-{i}", daemon=True) for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def lane_of(self, key: str) -> int:
        """The lane of every item with ``key``: stable for the process, spread evenly."""
        return zlib.crc32(key.encode()) % len(self._lanes)

    def put(self, key: str, item: T) -> None:
        lane = self._lanes[self.lane_of(key)]
        with self._cond:
            lane.waiting.append(item)
            self._cond.notify_all()

    def finished(self) -> list[Finished[T, R]]:
        """The batches done since the last call, oldest first."""
        done: list[Finished[T, R]] = []
        while self._finished:
            done.append(self._finished.popleft())
        return done

    def resume(self, lane: int) -> None:
        """The outage is over: the lane applies its head again."""
        with self._cond:
            self._lanes[lane].blocked = False
            self._cond.notify_all()

    def drop_head(self, lane: int) -> T:
        """Take the item that stopped ``lane`` away (it failed on its own) and let the lane go on."""
        with self._cond:
            state = self._lanes[lane]
            item = state.waiting.popleft()
            state.blocked = False
            self._cond.notify_all()
            return item

    def discard(self, keep: Callable[[T], bool]) -> None:
        """Forget waiting items ``keep`` refuses (deliveries of a channel that is gone)."""
        with self._cond:
            for lane in self._lanes:
                kept = [item for item in lane.waiting if keep(item)]
                lane.waiting.clear()
                lane.waiting.extend(kept)

    def idle(self) -> bool:
        """Nothing waiting, nothing running, nothing finished and not yet collected."""
        with self._cond:
            return not self._finished and not any(lane.waiting or lane.busy for lane in self._lanes)

    def running(self) -> bool:
        with self._cond:
            return any(lane.busy for lane in self._lanes)

    def oldest_start(self) -> float | None:
        """``time.monotonic()`` when the longest-running handler now in flight started; ``None``: none."""
        starts = [lane.started for lane in self._lanes if lane.started is not None]
        return min(starts) if starts else None

    def close(self, timeout: float | None = None) -> None:
        """Let the running batches finish; what waits is dropped (it was never acked)."""
        with self._cond:
            self._closed = True
            for lane in self._lanes:
                lane.waiting.clear()
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    def _take(self, index: int) -> list[T] | None:
        lane = self._lanes[index]
        with self._cond:
            while not self._closed and (lane.blocked or not lane.waiting):
                self._cond.wait()
            if self._closed:
                return None
            lane.busy = True
            size = max(1, self._batch(lane.waiting[0]))
            return [lane.waiting.popleft() for _ in range(min(size, len(lane.waiting)))]

    def _work(self, index: int) -> None:
        try:
            self._serve(index)
        finally:
            self._finish()  # on the lane's own thread: what it opened (a database connection) is closed

    def _serve(self, index: int) -> None:
        lane = self._lanes[index]

        def tick() -> None:
            lane.started = time.monotonic()

        while (items := self._take(index)) is not None:
            try:
                results, outage = self._run(items, tick)
            except BaseException as e:  # a bug of the runner: the loop treats it as an outage, then as the item's
                results, outage = [], e
            finally:
                lane.started = None
            with self._cond:
                if outage is not None:
                    # The item that met the outage and those behind it go back to the head, in order.
                    lane.waiting.extendleft(reversed(items[len(results) :]))
                    lane.blocked = True
                lane.busy = False
                self._finished.append(Finished(index, items[: len(results)], results, outage))
            self._wake()
