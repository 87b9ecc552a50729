"""One capped exponential schedule: delay queues, operator requeues and redials share it."""

from __future__ import annotations

import pytest

from rabbitsync.backoff import RETRY_INITIAL_SECONDS, Backoff, capped_exponential, jittered, retry_delay
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


def test_reconcile_retries_double_from_two_seconds_up_to_the_cap() -> None:
    ceilings = [retry_delay(n, 300.0, rng=lambda: 1.0) for n in range(12)]
    assert ceilings[:4] == [RETRY_INITIAL_SECONDS, 4.0, 8.0, 16.0]
    assert max(ceilings) == ceilings[-1] == 300.0, "capped: a broker down for an hour is polled every 5 minutes"
    assert [retry_delay(n, 300.0, rng=lambda: 0.0) for n in range(3)] == [1.0, 2.0, 4.0]


def test_reconcile_retries_of_objects_that_failed_together_spread_out() -> None:
    """A broker outage fails 1,000 subscriptions at once: their retries must not come back in the same second."""
    import random

    rng = random.Random(11)
    for attempt in (0, 5, 20):
        delays = [retry_delay(attempt, 300.0, rng=rng.random) for _ in range(1000)]
        ceiling = retry_delay(attempt, 300.0, rng=lambda: 1.0)
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        busiest = max(sum(1 for d in delays if int(d * 10) == slot) for slot in {int(d * 10) for d in delays})
        assert busiest < 1000 / 4, "no tenth of a second holds a quarter of the retries"
