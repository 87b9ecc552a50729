"""``make bench`` runs outside the test suite, so nothing else would notice it rot: every registered
section's module must import, and the table must render from results shaped like each section's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"

STAGE = {"n": 3, "p50_ms": 4.2, "p99_ms": 9.9, "mean_ms": 5.0, "max_ms": 9.9}
E2E_RUN = {
    "offered": 10,
    "answered_per_s": 9.5,
    "failed": 0,
    "arrived": 9,
    "end_to_end": STAGE,
    "post": STAGE,
    "stages": dict.fromkeys(("request", "east_to_broker", "broker_to_handler", "handler_commit"), STAGE),
}
RESULTS: dict[str, Any] = {
    "publish": {"connection_per_publish": 320.0, "confirm_each": 2600.0, "pipelined": 28000.0},
    "relay": {
        "serial": dict.fromkeys(
            ("wake", "claim", "publish_confirm", "mark", "broker_deliver", "commit_to_sent"), STAGE
        ),
        "burst": {"rows": 10, "commit_rows_per_s": 100, "rows_per_s": 90},
        "drain": {"rows": 10, "rows_per_s": 900},
        "primitive_rows_per_s": 2000,
    },
    "e2e": {"poll_ms": 2.0, "duration_s": 60.0, "serial": E2E_RUN, "50": E2E_RUN, "200": E2E_RUN},
    "scale": {
        "subscriptions": 1000,
        "ready_s": 90.0,
        "ready_but_a_condition_not_true": 0,
        "drift_repair_s": None,
        "operator_rss_mb": 150.0,
        "idle_cpu_percent": 2.0,
        "operator_connections": 1,
    },
    "policies": {
        "subscriptions": 100,
        "queues": 600,
        "declare_queues_per_s": 30.0,
        "declare_queues_per_s_one_policy_vhost": 31.0,
        "one_policy_s": 0.05,
        "per_queue_policies_s": 71.0,
        "first_policy_s": 0.01,
        "last_policy_s": 1.1,
    },
}


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_run", module)
    spec.loader.exec_module(module)
    return module


def test_every_section_module_in_the_checkout_imports_and_the_parser_knows_every_section(bench):
    names = [section.name for section in bench.SECTIONS]
    assert len(names) == len(set(names)), "two sections share a name"
    for section in bench.SECTIONS:
        if (BENCH / f"{section.module}.py").exists():
            assert bench.load(section) is not None, section.module
        else:
            assert bench.load(section) is None
    args = bench.parser().parse_args([arg for name in names for arg in ("--only", name)])
    assert args.only == names


def test_the_table_renders_every_section_with_a_row_per_target(bench):
    present = {s.name for s in bench.SECTIONS if bench.load(s) is not None}
    text = bench.table({"machine": {}, **{name: RESULTS[name] for name in present & RESULTS.keys()}})
    lines = text.splitlines()
    assert lines[0] == "| figure | measured | target | |"
    assert all(line.startswith("| ") and line.count(" | ") == 3 for line in lines), text
    if "e2e" in present:
        assert "| e2e one write at a time: p50 (ms) | 4.2 | <= 10 | met |" in lines
        assert "| e2e 200/s offered for 60 s: p99 (ms) | 9.9 | <= 250 | met |" in lines
    if "scale" in present:
        assert "| drift repaired (s) | — | <= 60 | not measured |" in lines
    if "policies" in present:
        assert any(line.startswith("| broker: 100 per-queue delivery-limit policies / one") for line in lines)


def test_a_failed_absent_or_unknown_section_is_one_row_not_a_crash(bench):
    failing, absent = bench.SECTIONS[0], bench.Section("nope", "no_such_bench_module", lambda m, a, d: {})
    assert bench.load(absent) is None
    assert bench.rows_of(failing, None, {"error": "TimeoutError: slow"}) == [
        (failing.name, "failed: TimeoutError: slow", "", "")
    ]
    assert bench.rows_of(absent, None, None) == [("nope", "not run", "", "")]
    generic = bench.rows_of(absent, ModuleType("plain"), {"rate": 12.5, "count": 3, "ok": True, "label": "x"})
    assert generic == [("nope: rate", "12.5", "", ""), ("nope: count", "3", "", "")]
