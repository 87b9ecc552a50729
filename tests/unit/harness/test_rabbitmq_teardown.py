"""Teardown stops a node's own epmd once the node is gone, and leaves one another node still uses."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from harness import rabbitmq_teardown

PID_FILE = Path("/state/rabbitmq/rabbit.pid")


@pytest.fixture
def signalled(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[int], signal.Signals]]:
    sent: list[tuple[list[int], signal.Signals]] = []
    monkeypatch.setattr(rabbitmq_teardown, "node_processes", lambda _pid_file: {} if sent else {41: "epmd"})
    monkeypatch.setattr(rabbitmq_teardown, "_signal_all", lambda pids, sig: sent.append((list(pids), sig)))
    monkeypatch.setattr(rabbitmq_teardown.time, "sleep", lambda _s: None)
    return sent


def test_an_epmd_that_still_lists_the_dead_node_for_a_moment_is_stopped(monkeypatch, signalled):
    # CI: epmd had not yet read the dead node's closed connection when teardown first asked it.
    answers = iter([["rabbitsync-26975"], ["rabbitsync-26975"], []])
    monkeypatch.setattr(rabbitmq_teardown, "epmd_names", lambda _port: next(answers))
    rabbitmq_teardown.kill_node(PID_FILE, 26976)
    assert signalled == [([41], signal.SIGKILL)]


def test_an_epmd_another_node_stays_registered_with_is_left_running(monkeypatch, signalled):
    clock = iter(range(100))
    monkeypatch.setattr(rabbitmq_teardown.time, "monotonic", lambda: float(next(clock)))
    monkeypatch.setattr(rabbitmq_teardown, "epmd_names", lambda _port: ["rabbitsync-other"])
    rabbitmq_teardown.kill_node(PID_FILE, 26976)
    assert signalled == []


def test_an_epmd_that_does_not_answer_is_stopped(monkeypatch, signalled):
    monkeypatch.setattr(rabbitmq_teardown, "epmd_names", lambda _port: None)
    rabbitmq_teardown.kill_node(PID_FILE, 26976)
    assert signalled == [([41], signal.SIGKILL)]


def test_teardown_returns_only_once_the_killed_epmd_is_gone(monkeypatch):
    # CI: the test's next look at the node's processes, right after kill(), still found the epmd.
    table = {41: "epmd"}
    dying: list[int] = []

    def node_processes(_pid_file: Path) -> dict[int, str]:
        if dying:  # the process table drops a killed pid one look later, as a busy kernel may
            table.pop(dying.pop(), None)
        return dict(table)

    monkeypatch.setattr(rabbitmq_teardown, "node_processes", node_processes)
    monkeypatch.setattr(rabbitmq_teardown, "_signal_all", lambda pids, sig: dying.extend(pids))
    monkeypatch.setattr(rabbitmq_teardown, "epmd_names", lambda _port: [])
    monkeypatch.setattr(rabbitmq_teardown.time, "sleep", lambda _s: None)
    rabbitmq_teardown.kill_node(PID_FILE, 26976)
    assert table == {}
