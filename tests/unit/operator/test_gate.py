"""Issue 10 point 6: the resync timer never runs alongside the change handler, nor on a stale spec."""

from __future__ import annotations

import threading

import pytest

from rabbitsync.operator.gate import ObjectGate

pytestmark = pytest.mark.unit


def test_a_resync_skips_while_the_change_handler_runs() -> None:
    gate = ObjectGate()
    inside, release = threading.Event(), threading.Event()

    def change() -> None:
        with gate.change("uid", 2):
            inside.set()
            release.wait(5)

    worker = threading.Thread(target=change)
    worker.start()
    inside.wait(5)
    with gate.resync("uid", 2) as run:
        assert not run
    release.set()
    worker.join()
    with gate.resync("uid", 2) as run:
        assert run


def test_a_resync_holding_an_older_generation_gives_way() -> None:
    gate = ObjectGate()
    with gate.change("uid", 3):
        pass
    with gate.resync("uid", 2) as run:
        assert not run
    with gate.resync("uid", 3) as run:
        assert run


def test_a_resync_waits_for_the_first_change_handler_on_its_object() -> None:
    # 1,000 new objects: their timers ticked while their creates still waited for a worker.
    gate = ObjectGate()
    with gate.resync("new", 1) as run:
        assert not run
    with gate.change("new", 1):
        pass
    with gate.resync("new", 1) as run:
        assert run


def test_the_change_handler_waits_for_a_running_resync() -> None:
    gate = ObjectGate()
    order: list[str] = []
    with gate.change("uid", 1):
        pass
    with gate.resync("uid", 1) as run:
        assert run
        # A change arriving now blocks until the resync is done.
        done = threading.Event()

        def change() -> None:
            with gate.change("uid", 2):
                order.append("change")
            done.set()

        worker = threading.Thread(target=change)
        worker.start()
        assert not done.wait(0.2)
        order.append("resync")
    assert done.wait(5)
    worker.join()
    assert order == ["resync", "change"]
