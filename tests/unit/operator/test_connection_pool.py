"""The operator's kept AMQP connections: one per broker, replaced when dropped, closed on shutdown."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest

from rabbitsync.amqp.connections import ConnectionPool
from rabbitsync.transport import BrokerEndpoint, BrokerUnreachable, NotFound, Timeouts

pytestmark = pytest.mark.unit

EAST = BrokerEndpoint("amqp://op:pw@east.example/")
WEST = BrokerEndpoint("amqp://op:pw@west.example/")


@dataclass
class FakeConnection:
    endpoint: BrokerEndpoint
    alive: bool = True
    closed: bool = False

    def ping(self) -> None:
        if not self.alive:
            raise BrokerUnreachable("connection reset by peer")

    def close(self) -> None:
        self.closed = True


class Opener:
    def __init__(self, refuse: bool = False) -> None:
        self.opened: list[FakeConnection] = []
        self.refuse = refuse

    def __call__(self, endpoint: BrokerEndpoint, timeouts: Timeouts) -> Any:
        if self.refuse:
            raise BrokerUnreachable("connection refused")
        self.opened.append(FakeConnection(endpoint))
        return self.opened[-1]


def _use(connection: Any) -> Any:
    connection.ping()  # the work fails on a dead connection as real AMQP calls would
    return connection


def test_one_connection_per_broker_reused_across_calls() -> None:
    opener = Opener()
    pool = ConnectionPool(opener=opener)
    used = {pool.run(e, Timeouts(), _use).endpoint for _ in range(100) for e in (EAST, WEST)}
    assert used == {EAST, WEST}
    assert [c.endpoint for c in opener.opened] == [EAST, WEST] and pool.opened == 2


def test_a_dropped_connection_is_replaced_once_and_the_work_runs_again() -> None:
    opener = Opener()
    pool = ConnectionPool(opener=opener)
    first = pool.run(EAST, Timeouts(), _use)
    first.alive = False
    second = pool.run(EAST, Timeouts(), _use)
    assert second is not first and first.closed and pool.opened == 2


def test_a_broker_that_refuses_a_fresh_connection_raises() -> None:
    pool = ConnectionPool(opener=Opener(refuse=True))
    with pytest.raises(BrokerUnreachable):
        pool.run(EAST, Timeouts(), _use)


def test_errors_of_the_work_itself_keep_the_connection() -> None:
    opener = Opener()
    pool = ConnectionPool(opener=opener)

    def missing(connection: Any) -> None:
        raise NotFound("no queue")

    for _ in range(3):
        with pytest.raises(NotFound):
            pool.run(EAST, Timeouts(), missing)
    assert pool.opened == 1 and not opener.opened[0].closed


def test_close_ends_every_connection_and_capacity_evicts_the_oldest() -> None:
    opener = Opener()
    pool = ConnectionPool(capacity=1, opener=opener)
    east = pool.run(EAST, Timeouts(), _use)
    pool.run(WEST, Timeouts(), _use)
    assert east.closed, "evicted to make room"
    pool.close()
    assert all(c.closed for c in opener.opened)
    assert pool.run(WEST, Timeouts(), _use) is not opener.opened[1]


def test_threads_share_one_connection_one_at_a_time() -> None:
    opener = Opener()
    pool = ConnectionPool(opener=opener)
    inside = threading.Semaphore(1)
    overlaps: list[bool] = []

    def exclusive(connection: Any) -> None:
        overlaps.append(not inside.acquire(blocking=False))
        time.sleep(0.002)
        inside.release()

    threads = [threading.Thread(target=lambda: pool.run(EAST, Timeouts(), exclusive)) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert pool.opened == 1 and overlaps == [False] * 20


def test_per_broker_bounds_the_connections_used_at_once() -> None:
    opener = Opener()
    pool = ConnectionPool(per_broker=2, opener=opener)
    lock = threading.Lock()
    busy: list[int] = [0]
    peak: list[int] = [0]

    def work(connection: Any) -> None:
        with lock:
            busy[0] += 1
            peak[0] = max(peak[0], busy[0])
        time.sleep(0.01)
        with lock:
            busy[0] -= 1

    threads = [threading.Thread(target=lambda: pool.run(EAST, Timeouts(), work)) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] <= 2 and pool.opened <= 2
