"""When a fault run's settling may stop before its cap, and how long the cap is."""

from __future__ import annotations

from chaos import run


def test_settling_gives_up_once_nothing_moved_for_a_minute_and_the_broker_holds_no_dead_letters() -> None:
    assert run.stalled(run.STALL_S, dead_lettering=0)
    assert not run.stalled(run.STALL_S - 1, dead_lettering=0)


def test_settling_waits_for_the_brokers_dead_lettering_however_long_nothing_else_moves() -> None:
    # RabbitMQ sends an unconfirmed batch of dead letters again only after its confirm timeout (180 s).
    assert not run.stalled(run.STALL_S * 5, dead_lettering=141)


def test_the_cap_covers_two_of_the_brokers_dead_letter_confirm_timeouts() -> None:
    assert run.parse([]).settle == run.SETTLE_S > 2 * 180
