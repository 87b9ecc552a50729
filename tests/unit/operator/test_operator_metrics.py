"""The operator's metrics: reconciles by result, errors, durations and the managed objects gauge."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from rabbitsync.operator.metrics import OperatorMetrics
from rabbitsync.operator.outcome import ReconcileOutcome

pytestmark = pytest.mark.unit

SUB = ("syncsubscriptions", "shop", "orders")


def _outcome(ready: str, temporary: str | None = None) -> ReconcileOutcome:
    return ReconcileOutcome(status={"conditions": [{"type": "Ready", "status": ready}]}, temporary_failure=temporary)


def _value(metrics: OperatorMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_each_reconcile_is_counted_by_result_and_timed() -> None:
    metrics = OperatorMetrics()
    metrics.observe(SUB, "change", lambda: _outcome("True"))
    metrics.observe(SUB, "resync", lambda: _outcome("False"))
    metrics.observe(SUB, "change", lambda: _outcome("False", temporary="broker down"))
    counts = {
        result: _value(
            metrics, "rabbitsync_operator_reconciles_total", kind="syncsubscriptions", trigger=t, result=result
        )
        for t, result in (("change", "ready"), ("resync", "not_ready"), ("change", "retry"))
    }
    assert counts == {"ready": 1.0, "not_ready": 1.0, "retry": 1.0}
    assert _value(metrics, "rabbitsync_operator_reconcile_duration_seconds_count", kind="syncsubscriptions") == 3.0


def test_a_raising_reconcile_is_an_error_and_still_raises() -> None:
    metrics = OperatorMetrics()

    def boom() -> ReconcileOutcome:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        metrics.observe(SUB, "change", boom)
    assert _value(metrics, "rabbitsync_operator_reconcile_errors_total", kind="syncsubscriptions") == 1.0
    assert (
        _value(
            metrics, "rabbitsync_operator_reconciles_total", kind="syncsubscriptions", trigger="change", result="error"
        )
        == 1.0
    )


def test_managed_objects_follow_the_last_reconcile_and_deletion() -> None:
    metrics = OperatorMetrics()
    other = ("syncsubscriptions", "shop", "menu")
    broker = ("clustersyncbrokers", "", "default")
    metrics.observe(SUB, "change", lambda: _outcome("True"))
    metrics.observe(other, "change", lambda: _outcome("False"))
    metrics.observe(broker, "change", lambda: _outcome("True"))
    metrics.observe(other, "resync", lambda: _outcome("True"))
    assert _value(metrics, "rabbitsync_operator_managed_objects", kind="syncsubscriptions", ready="True") == 2.0
    assert _value(metrics, "rabbitsync_operator_managed_objects", kind="syncsubscriptions", ready="False") is None
    metrics.forget(SUB)
    assert _value(metrics, "rabbitsync_operator_managed_objects", kind="syncsubscriptions", ready="True") == 1.0
    assert b'rabbitsync_operator_managed_objects{kind="clustersyncbrokers",ready="True"} 1.0' in generate_latest(
        metrics.registry
    )
