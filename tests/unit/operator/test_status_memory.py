"""Issue 11 point 3: a reconcile starts from the status this process last wrote, not from a body kopf has
not caught up with (at 1,000 subscriptions timers were handed bodies minutes behind their own patches)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import kopf
import pytest

from rabbitsync.operator import handlers
from rabbitsync.operator.kube import indexes
from rabbitsync.operator.metrics import OperatorMetrics
from rabbitsync.operator.outcome import ReconcileOutcome
from rabbitsync.operator.settings import OperatorSettings
from rabbitsync.operator.statuses import StatusMemory, merge_patch

pytestmark = pytest.mark.unit

READY = {"type": "Ready", "status": "True", "reason": "TopologyVerified"}
PORT_INDEXES = (
    indexes.SYNC_BROKERS,
    indexes.SUBSCRIPTIONS_BY_SERVICE,
    indexes.PUBLICATIONS_BY_SERVICE,
    indexes.CLUSTER_SYNC_BROKERS,
)
"""What a handler hands the port: this test's reconcile reads none of them."""


def test_a_status_patch_merges_as_the_api_server_merges_it() -> None:
    stored = {"queue": "q", "backfill": {"phase": "Running", "sent": 3}, "conditions": [READY], "gone": 1}
    patch = {"backfill": {"sent": 9}, "conditions": [], "gone": None, "consumers": 2}
    assert merge_patch(stored, patch) == {
        "queue": "q",
        "backfill": {"phase": "Running", "sent": 9},
        "conditions": [],
        "consumers": 2,
    }
    assert stored["backfill"] == {"phase": "Running", "sent": 3}, "the body is not changed"


def test_the_status_written_last_wins_over_a_stale_body_until_the_object_is_forgotten() -> None:
    memory = StatusMemory()
    assert memory.newest("u", {"stale": True}) == {"stale": True}, "nothing written yet: the body"
    memory.wrote("u", {"queue": "q"}, {"observedGeneration": 2})
    assert memory.newest("u", {"stale": True}) == {"queue": "q", "observedGeneration": 2}
    memory.forget("u")
    assert memory.newest("u", {}) == {} and len(memory) == 0


class Recorder:
    """A reconcile that records the status it was handed and answers Ready at the object's generation."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def __call__(self, _cluster: object, _memo: object, kwargs: dict[str, Any]) -> ReconcileOutcome:
        self.seen.append(dict(kwargs["status"]))
        generation = kwargs["meta"]["generation"]
        return ReconcileOutcome(status={"observedGeneration": generation, "conditions": [READY]})


def _handlers(recorder: Callable[..., ReconcileOutcome]) -> tuple[Any, Any]:
    registry = kopf.OperatorRegistry()
    handlers._register_reconciler(
        registry,
        OperatorSettings(cluster="east"),
        OperatorMetrics(),
        "syncsubscriptions",
        recorder,
        resync_seconds=30.0,
        statuses=StatusMemory(),
        # As the subscriptions' own: a Ready one is left to the refresh schedule.
        watched=lambda kw: (
            READY in kw["status"].get("conditions", [])
            and kw["status"].get("observedGeneration") == kw["meta"]["generation"]
        ),
    )
    [change, *_] = registry._changing.get_all_handlers()
    [timer] = registry._spawning.get_all_handlers()
    return change.fn, timer.fn


def _kwargs(status: dict[str, Any]) -> dict[str, Any]:
    body = kopf.Body(
        {
            "apiVersion": "rabbitsync.io/v1alpha1",
            "kind": "SyncSubscription",
            "metadata": {"namespace": "shop", "name": "orders", "uid": "u1", "generation": 1},
        }
    )
    return {
        "body": body,
        "patch": kopf.Patch(),
        "memo": SimpleNamespace(api=None),
        "uid": "u1",
        "namespace": "shop",
        "name": "orders",
        "meta": {"generation": 1},
        "status": status,
        **{index: {} for index in PORT_INDEXES},
    }


def test_a_timer_handed_a_body_without_the_ready_status_just_written_leaves_the_object_to_its_refresh() -> None:
    recorder = Recorder()
    on_change, on_timer = _handlers(recorder)
    on_change(retry=0, **_kwargs({}))
    on_timer(**_kwargs({}))  # the body of the creation event: kopf has not seen the status patch yet
    assert recorder.seen == [{}], "the timer took the Ready object for an unverified one and reconciled it"


def test_a_change_starts_from_the_status_written_last_not_from_the_bodys() -> None:
    recorder = Recorder()
    on_change, _ = _handlers(recorder)
    on_change(retry=0, **_kwargs({}))
    on_change(retry=0, **_kwargs({"conditions": []}))  # e.g. the drift sweep's request, on a lagging body
    assert recorder.seen == [{}, {"observedGeneration": 1, "conditions": [READY]}]


def test_a_retry_of_an_object_a_resync_has_made_ready_since_does_nothing() -> None:
    """1,000 subscriptions waited for consumers; the resync timers found most of them Ready before kopf's
    retry came: 230 reconciles in the first idle minute that had nothing left to do."""
    recorder = Recorder()
    waiting = ReconcileOutcome(status={"observedGeneration": 1, "conditions": []}, temporary_failure="no consumer")
    answers = iter([waiting])
    on_change, on_timer = _handlers(lambda *args: next(answers, None) or recorder(*args))
    with pytest.raises(kopf.TemporaryError):
        on_change(retry=0, **_kwargs({}))
    on_timer(**_kwargs({}))
    assert len(recorder.seen) == 1, "the resync found the consumer: Ready"
    on_change(retry=1, **_kwargs({}))
    assert len(recorder.seen) == 1, "kopf's retry came after the resync made it Ready"
    on_change(retry=0, **_kwargs({}))  # a new cause (the drift sweep's request): reconciled
    assert len(recorder.seen) == 2
