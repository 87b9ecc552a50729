"""The folder is the layer: `pytest -m unit`, `-m integration` and `-m e2e` together run the whole suite.

`make test-unit` and `make test-integration` select by marker, so a test that loses its folder's marker
is silently never run there. These tests collect the suite the way those targets do, in a subprocess
(collection imports the test modules but sets up no fixture, so no server starts), and compare.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LAYERS = ("unit", "integration", "e2e")


def _collect(*marker: str) -> set[str]:
    """The ids `pytest <marker>` would run, from the repository root."""
    # Options a developer exports for their own runs (say `-m unit`) would change what is collected.
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *marker],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # 5 is "no tests collected": a marker that selects nothing is a finding for the asserts, not a crash.
    assert result.returncode in (0, 5), result.stdout + result.stderr
    return {line for line in result.stdout.splitlines() if "::" in line}


def _folder(test_id: str) -> str:
    """`tests/unit/x/test_y.py::test_z` -> `unit`."""
    return Path(test_id.split("::", 1)[0]).parts[1]


@pytest.fixture(scope="module")
def selections() -> dict[str, set[str]]:
    """Every layer's selection, plus the unmarked run under the key `all`."""
    runs = {layer: ("-m", layer) for layer in LAYERS} | {"all": ()}
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = {name: pool.submit(_collect, *args) for name, args in runs.items()}
        return {name: future.result() for name, future in futures.items()}


def test_every_test_lives_in_a_layer_folder(selections: dict[str, set[str]]) -> None:
    assert {test_id for test_id in selections["all"] if _folder(test_id) not in LAYERS} == set()


def test_each_marker_selects_exactly_its_folder(selections: dict[str, set[str]]) -> None:
    for layer in LAYERS:
        expected = {test_id for test_id in selections["all"] if _folder(test_id) == layer}
        assert expected, f"no test under tests/{layer}/"
        assert sorted(expected - selections[layer]) == [], f"tests/{layer}/ tests not selected by -m {layer}"
        assert sorted(selections[layer] - expected) == [], f"-m {layer} selects tests outside tests/{layer}/"


def test_the_markers_are_disjoint_and_cover_the_suite(selections: dict[str, set[str]]) -> None:
    unit, integration, e2e = (selections[layer] for layer in LAYERS)
    assert unit & integration == set()
    assert unit & e2e == set()
    assert integration & e2e == set()
    assert unit | integration | e2e == selections["all"]
