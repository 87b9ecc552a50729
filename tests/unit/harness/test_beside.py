"""What a run starts beside the environment is stopped by ``down``, as ``make dev-down`` runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import beside, environment, processes

pytestmark = pytest.mark.unit


def test_down_stops_what_was_recorded_beside_the_environment(tmp_path: Path) -> None:
    balancer = processes.spawn("balancer", ["sleep", "600"], tmp_path / "balancer.log")
    try:
        beside.record(tmp_path, members=[], others=[balancer], databases=[])
        environment.down(tmp_path)
        assert not processes.alive(balancer), "make dev-down after make chaos --keep leaves nothing running"
        assert not (tmp_path / beside.FILE).exists()
        environment.down(tmp_path)  # again: nothing recorded, nothing to do
    finally:
        processes.stop(balancer)


def test_down_removes_the_environment_even_when_something_beside_it_fails_to_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(directory: Path) -> None:
        raise RuntimeError("a member did not stop")

    removed: list[Path] = []
    monkeypatch.setattr(beside, "stop", fails)
    monkeypatch.setattr(environment, "_down", removed.append)
    with pytest.raises(RuntimeError, match="member"):
        environment.down(tmp_path)
    assert removed == [tmp_path]
