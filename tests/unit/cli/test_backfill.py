"""``rabbitsync backfill``: it sets the annotation the operator acts on, and follows the status with --wait."""

from __future__ import annotations

import importlib
import io
import json
from typing import Any

import pytest
from clifakes import FakeCluster, obj

from rabbitsync.api.syncsubscription import BACKFILL_ANNOTATION
from rabbitsync.cli import backfill
from rabbitsync.cli.resources import SUBSCRIPTION, parse

main = importlib.import_module("rabbitsync.cli.main")
TYPES = ("R_CREATED", "R_DELETED")


def _copy(**status: Any) -> dict[str, Any]:
    found = obj("shop", "copy", "delivery", TYPES, queue="rabbitsync.east.shop.copy")
    found["status"].update(status)
    return found


def _run(monkeypatch: pytest.MonkeyPatch, clusters: list[FakeCluster], *argv: str) -> tuple[int, str]:
    monkeypatch.setattr(main.kube, "connect", lambda _targets: clusters)
    monkeypatch.setattr(main.kube, "targets", lambda *_args: [])
    out = io.StringIO()
    monkeypatch.setattr(main.sys, "stdout", out)
    return main.main(["backfill", *argv]), out.getvalue()


def test_the_command_sets_a_new_annotation_value_on_the_subscription_only(monkeypatch: pytest.MonkeyPatch) -> None:
    east, west = FakeCluster("east", [_copy()], []), FakeCluster("west", [], [])
    code, out = _run(monkeypatch, [east, west], "shop/copy", "-o", "json")
    assert code == 0
    [(namespace, name, annotations)] = east.annotated
    assert (namespace, name, list(annotations)) == ("shop", "copy", [BACKFILL_ANNOTATION])
    assert json.loads(out)[0]["trigger"] == annotations[BACKFILL_ANNOTATION]
    assert west.annotated == []
    _run(monkeypatch, [east, west], "shop/copy", "-o", "json")
    assert east.annotated[0][2] != east.annotated[1][2], "each run asks anew"


def test_progress_reads_the_status_of_this_trigger_only() -> None:
    mine = {"trigger": "t1", "phase": "Running", "sent": 10, "applied": 4}
    condition = {"type": "BackfillComplete", "status": "False", "reason": "Running", "message": "m"}
    resource = parse(SUBSCRIPTION, "east", _copy(backfill=mine, conditions=[condition]))
    assert backfill.progress(resource, "t1") | {} == {
        "cluster": "east",
        "subscription": "shop/copy",
        "trigger": "t1",
        "phase": "Running",
        "sent": 10,
        "applied": 4,
        "reason": "Running",
        "message": "m",
    }
    # The operator has not picked the new annotation up yet: the older backfill's numbers are not ours.
    assert backfill.progress(resource, "t2")["phase"] == "Requested"
    assert backfill.progress(resource, "t2")["applied"] == 0


def test_follow_emits_each_change_until_complete_or_the_timeout() -> None:
    states = [
        {},
        {"trigger": "t", "phase": "Running", "sent": 0, "applied": 0},
        {"trigger": "t", "phase": "Running", "sent": 0, "applied": 0},
        {"trigger": "t", "phase": "Complete", "sent": 5, "applied": 5},
    ]
    reads = iter(
        parse(SUBSCRIPTION, "east", _copy(backfill=s)) if s else parse(SUBSCRIPTION, "east", _copy()) for s in states
    )
    seen: list[dict[str, Any]] = []
    assert backfill.follow(lambda: next(reads), "t", 60, seen.append, sleep=lambda _s: None)
    assert [r["phase"] for r in seen] == ["Requested", "Running", "Complete"]
    now = iter([0.0, 0.0, 100.0])
    stuck = parse(SUBSCRIPTION, "east", _copy(backfill={"trigger": "t", "phase": "Running"}))
    assert not backfill.follow(lambda: stuck, "t", 10, seen.append, clock=lambda: next(now), sleep=lambda _s: None)
