"""One capped exponential schedule: delay queues, operator requeues and redials share it."""

from __future__ import annotations

import pytest

from rabbitsync.backoff import Backoff, capped_exponential, jittered
from rabbitsync.topology.retry import backoff_delays

pytestmark = pytest.mark.unit


def test_doubles_from_initial_up_to_the_cap() -> None:
    assert [capped_exponential(n, 1000, 60_000) for n in range(8)] == [
        1000,
        2000,
        4000,
        8000,
        16_000,
        32_000,
        60_000,
        60_000,
    ]
    assert capped_exponential(3, 0.5, 100.0) == 4.0


def test_ints_stay_ints_and_huge_steps_stay_at_the_cap() -> None:
    assert isinstance(capped_exponential(2, 5, 100), int)
    assert capped_exponential(10_000, 2.0, 300.0) == 300.0
    assert capped_exponential(10_000, 1, 86_400_000) == 86_400_000


def test_a_negative_step_is_refused() -> None:
    with pytest.raises(ValueError):
        capped_exponential(-1, 1.0, 2.0)


def test_delay_queues_follow_the_same_schedule() -> None:
    assert backoff_delays(5, 1000, 5000) == [capped_exponential(n, 1000, 5000) for n in range(4)]
    assert backoff_delays(1, 1000, 5000) == []


def test_jittered_delays_stay_in_the_upper_half_of_each_step() -> None:
    low = Backoff(initial=0.2, cap=15.0, rng=lambda: 0.0)
    high = Backoff(initial=0.2, cap=15.0, rng=lambda: 1.0)
    ceilings = [capped_exponential(n, 0.2, 15.0) for n in range(10)]
    assert [low.next() for _ in ceilings] == [c / 2 for c in ceilings]
    assert [high.next() for _ in ceilings] == ceilings
    high.reset()
    assert high.next() == 0.2


@pytest.mark.parametrize(("initial", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_backoff_needs_a_positive_initial_below_the_cap(initial: float, cap: float) -> None:
    with pytest.raises(ValueError):
        Backoff(initial=initial, cap=cap)


def test_jittered_spreads_over_the_upper_half() -> None:
    assert jittered(10.0, rng=lambda: 0.0) == 5.0
    assert jittered(10.0, rng=lambda: 0.5) == 7.5
    assert 5.0 <= jittered(10.0) <= 10.0
