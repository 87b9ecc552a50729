"""Versions and the last-writer-wins order: replicas agree whatever the arrival order."""

from __future__ import annotations

import itertools

import pytest

from rabbitsync.events import VersionClock, wins

pytestmark = pytest.mark.unit


def winner(writes):
    current = (0, "")
    for version, source in writes:
        if wins(version, source, *current):
            current = (version, source)
    return current


def test_every_arrival_order_converges_to_the_same_winner():
    writes = [(100, "/clusters/east"), (200, "/clusters/west"), (300, "/clusters/east"), (300, "/clusters/west")]
    results = {winner(order) for order in itertools.permutations(writes)}
    assert results == {(300, "/clusters/west")}


def test_same_write_again_does_not_win():
    assert not wins(5, "a", 5, "a")
    assert wins(6, "a", 5, "b")
    assert not wins(4, "z", 5, "a")


def test_clock_is_strictly_increasing_even_when_the_wall_clock_stalls_or_goes_back():
    readings = iter([1000, 1000, 999, 5000])
    clock = VersionClock(now_us=lambda: next(readings))
    assert [clock.tick() for _ in range(4)] == [1000, 1001, 1002, 5000]


def test_clock_moves_past_an_observed_version():
    clock = VersionClock(now_us=lambda: 1000)
    assert clock.tick(observed=9000) == 9001
    assert clock.tick() == 9002
