"""``make operators-up`` / ``operators-down`` / ``dev-down``: the harness commands behind them, in a scratch
state directory holding a copy of the east cluster's admin kubeconfig."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import environment, operators

pytestmark = pytest.mark.integration


def _harness(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RABBITSYNC_STATE_DIR": str(state), "PYTHONPATH": str(environment.REPO_ROOT / "hack")}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_operators_up_then_dev_down_stops_them(clusters, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shutil.copy(clusters["east"].kubeconfig, tmp_path / "east.kubeconfig")
    up = _harness(tmp_path, "operators-up", "--clusters", "east")
    try:
        assert up.returncode == 0, up.stderr
        [op] = operators.running(tmp_path)
        assert op.cluster == "east" and (tmp_path / "operator-east.log").exists()
        assert operators.healthy(op)
        token = (tmp_path / "operator-east.kubeconfig").read_text()
        assert "token:" in token and "client-certificate" not in token
        again = _harness(tmp_path, "operators-up", "--clusters", "east")
        assert again.returncode == 0 and operators.running(tmp_path) == [op], again.stderr
    finally:
        down = _harness(tmp_path, "down")
    assert down.returncode == 0, down.stderr
    assert operators.running(tmp_path) == []
    assert not op.alive()


def test_operators_up_without_dev_environment_says_so(tmp_path: Path) -> None:
    result = _harness(tmp_path, "operators-up", "--clusters", "east")
    assert result.returncode != 0
    assert "make dev-up" in result.stderr and "Traceback" not in result.stderr, result.stderr
