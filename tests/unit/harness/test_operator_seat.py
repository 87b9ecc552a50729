"""The test session's operator seat: whoever takes it stops whoever ran operators before."""

from __future__ import annotations

import pytest

from harness.seat import OperatorSeat

pytestmark = pytest.mark.unit


def test_taking_the_seat_stops_the_holder_before_and_only_it():
    seat = OperatorSeat()
    stopped: list[str] = []
    seat.take("fleet", lambda: stopped.append("fleet"))
    assert stopped == []  # nobody held it
    assert seat.held_by("fleet")
    seat.take("e2e", lambda: stopped.append("e2e"))
    assert stopped == ["fleet"]
    assert seat.holder == "e2e"
    assert not seat.held_by("fleet")


def test_the_holder_taking_it_again_does_not_stop_itself():
    seat = OperatorSeat()
    stopped: list[str] = []
    seat.take("fleet", lambda: stopped.append("first"))
    seat.take("fleet", lambda: stopped.append("second"))
    assert stopped == []
    seat.take("e2e", lambda: None)
    assert stopped == ["second"]  # the release it gave last
