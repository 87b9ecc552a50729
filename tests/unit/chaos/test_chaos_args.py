"""``make chaos``'s arguments: a CI run and a soak differ in their count and in how long they may write."""

from __future__ import annotations

from chaos import load, run


def test_a_ci_run_writes_5000_events_for_at_most_an_hour_with_two_writers_per_cluster() -> None:
    args = run.parse([])
    assert (args.events, args.max_minutes, args.writers) == (5_000, 60.0, 2)


def test_a_soak_writes_100000_events_and_may_take_six_hours() -> None:
    args = run.parse(["--soak"])
    assert (args.events, args.max_minutes) == (100_000, 360.0)


def test_a_soak_keeps_a_larger_count_an_explicit_deadline_and_the_writers_asked_for() -> None:
    args = run.parse(["--soak", "--events", "150000", "--max-minutes", "90", "--writers", "4"])
    assert (args.events, args.max_minutes, args.writers) == (150_000, 90.0, 4)


def test_a_stopped_stream_reports_it_at_once() -> None:
    stream = load.Stream({}, load.Seeds(), target=10)
    assert not stream.wait_stopped(0.01)
    stream.stop()
    assert stream.wait_stopped(10)
