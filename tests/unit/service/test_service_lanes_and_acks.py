"""The sidecar's lanes (order per key, batches, outages) and its ack bookkeeping, without a broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from rabbitsync.sidecar.acks import Acks
from rabbitsync.sidecar.lanes import Finished, Lanes

pytestmark = pytest.mark.unit


# -- acks -------------------------------------------------------------------------------------------


def test_a_settled_run_at_the_front_is_one_multiple_ack():
    acks = Acks()
    for tag in range(1, 6):
        acks.received(7, tag)
    assert acks.settle(7, [1, 2, 3]) == [(3, True)]
    assert acks.settle(7, [4]) == [(4, False)]


def test_a_delivery_settled_behind_an_unsettled_one_is_acked_alone_and_never_covered_twice():
    acks = Acks()
    for tag in (1, 2, 3, 4):
        acks.received(1, tag)
    assert acks.settle(1, [3]) == [(3, False)]  # 1 and 2 are still being applied
    assert acks.settle(1, [2]) == [(2, False)]
    # 1 settles: it is alone at the front now (2 and 3 were acked already); 4 is still out.
    assert acks.settle(1, [1]) == [(1, False)]
    assert acks.settle(1, [4]) == [(4, False)]
    assert acks.settle(1, [4]) == []


def test_a_forgotten_consumer_gets_no_ack():
    acks = Acks()
    acks.received(2, 1)
    acks.forget(2)
    assert not acks.knows(2)
    assert acks.settle(2, [1]) == []


# -- lanes ------------------------------------------------------------------------------------------


class Recorder:
    """A runner that records what each lane applied, in order, and can fail on demand."""

    def __init__(self, outage_on: set[str] | None = None) -> None:
        self.applied: list[str] = []
        self.batches: list[list[str]] = []
        self.outage_on = outage_on or set()
        self.lock = threading.Lock()

    def __call__(self, items: list[str], tick: Callable[[], None]) -> tuple[list[str], BaseException | None]:
        with self.lock:
            self.batches.append(list(items))
        done: list[str] = []
        for item in items:
            tick()
            if item in self.outage_on:
                self.outage_on.discard(item)  # fails once, as an outage would
                return done, ConnectionError("database away")
            with self.lock:
                self.applied.append(item)
            done.append(item)
        return done, None


def _collect(lanes: Lanes[str, str], count: int, timeout: float = 10) -> list[Finished[str, str]]:
    got: list[Finished[str, str]] = []
    deadline = time.monotonic() + timeout
    while sum(len(f.items) for f in got) < count and time.monotonic() < deadline:
        got += lanes.finished()
        time.sleep(0.005)
    return got


def test_items_of_one_key_are_applied_in_order_across_parallel_lanes():
    runner = Recorder()
    lanes: Lanes[str, str] = Lanes(4, runner, batch=lambda _item: 7, wake=lambda: None)
    try:
        for n in range(400):
            lanes.put(f"k{n % 10}", f"k{n % 10}:{n:04d}")
        _collect(lanes, 400)
    finally:
        lanes.close()
    assert len(runner.applied) == 400
    for key in range(10):
        mine = [item for item in runner.applied if item.startswith(f"k{key}:")]
        assert mine == sorted(mine)
    assert max(len(batch) for batch in runner.batches) <= 7


def _outage(lanes: Lanes[str, str], timeout: float = 10) -> Finished[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stopped = next((f for f in lanes.finished() if f.outage is not None), None)
        if stopped is not None:
            return stopped
        time.sleep(0.005)
    raise AssertionError("no outage reported")


def test_an_outage_keeps_the_item_at_the_head_until_resumed_then_order_holds():
    runner = Recorder(outage_on={"a:2"})
    woken = threading.Event()
    lanes: Lanes[str, str] = Lanes(1, runner, batch=lambda _item: 3, wake=woken.set)
    try:
        for n in range(6):
            lanes.put("a", f"a:{n}")
        stopped = _outage(lanes)
        time.sleep(0.1)
        assert runner.applied == ["a:0", "a:1"], "the lane went on past the outage"
        assert not lanes.idle()
        lanes.resume(stopped.lane)
        _collect(lanes, 4)
    finally:
        lanes.close()
    assert runner.applied == [f"a:{n}" for n in range(6)]
    assert woken.is_set()


def test_drop_head_takes_the_failed_item_away_and_the_lane_goes_on():
    runner = Recorder(outage_on={"a:1"})
    lanes: Lanes[str, str] = Lanes(1, runner, batch=lambda _item: 1, wake=lambda: None)
    try:
        for n in range(3):
            lanes.put("a", f"a:{n}")
        stopped = _outage(lanes)
        assert lanes.drop_head(stopped.lane) == "a:1"
        _collect(lanes, 1)
    finally:
        lanes.close()
    assert runner.applied == ["a:0", "a:2"]
