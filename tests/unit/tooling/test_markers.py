"""The folder is the layer: `pytest -m unit`, `-m integration` and `-m e2e` together run the whole suite.

`make test-unit` and `make test-integration` select by marker, so a test that loses its folder's marker
is silently never run there. These tests collect the whole suite once, in a subprocess (collection imports
the test modules but sets up no fixture, so no server starts), with a plugin that reports each test's
markers. `-m NAME` selects exactly the tests whose markers (`item.iter_markers()`) include NAME, so the
report tells what each `-m` run selects without collecting the suite four times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
LAYERS = ("unit", "integration", "e2e")


def _folder(test_id: str) -> str:
    """`tests/unit/x/test_y.py::test_z` -> `unit`."""
    return Path(test_id.split("::", 1)[0]).parts[1]


@pytest.fixture(scope="module")
def markers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Every test id of a plain `pytest` run, with the names of its markers."""
    report = tmp_path_factory.mktemp("markers") / "report.json"
    # Options a developer exports for their own runs (say `-m unit`) would change what is collected.
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    env |= {
        "MARKER_REPORT": str(report),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "marker_report"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {test_id: set(names) for test_id, names in json.loads(report.read_text()).items()}


@pytest.fixture(scope="module")
def selections(markers: dict[str, set[str]]) -> dict[str, set[str]]:
    """What `pytest -m <layer>` runs, for each layer."""
    return {layer: {test_id for test_id, names in markers.items() if layer in names} for layer in LAYERS}


def test_every_test_lives_in_a_layer_folder(markers: dict[str, set[str]]) -> None:
    assert sorted(test_id for test_id in markers if _folder(test_id) not in LAYERS) == []


def test_each_marker_selects_exactly_its_folder(markers: dict[str, set[str]], selections: dict[str, set[str]]) -> None:
    for layer in LAYERS:
        expected = {test_id for test_id in markers if _folder(test_id) == layer}
        assert expected, f"no test under tests/{layer}/"
        assert sorted(expected - selections[layer]) == [], f"tests/{layer}/ tests not selected by -m {layer}"
        assert sorted(selections[layer] - expected) == [], f"-m {layer} selects tests outside tests/{layer}/"


def test_the_markers_are_disjoint_and_cover_the_suite(
    markers: dict[str, set[str]], selections: dict[str, set[str]]
) -> None:
    unit, integration, e2e = (selections[layer] for layer in LAYERS)
    assert unit & integration == set()
    assert unit & e2e == set()
    assert integration & e2e == set()
    assert unit | integration | e2e == set(markers)
