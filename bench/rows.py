"""The table's vocabulary, shared by ``run.py`` and every section's ``table_rows``.

A row is (figure, measured, target, verdict); a verdict is ``met``, ``NOT MET``, ``not measured`` or
empty for a figure without a target.
"""

from __future__ import annotations

import math
import operator
import statistics

Row = tuple[str, str, str, str]


_COMPARE = {"<": operator.lt, "<=": operator.le, ">=": operator.ge}


def verdict(value: float | None, target: float, op: str) -> str:
    if value is None:
        return "not measured"
    return "met" if _COMPARE[op](value, target) else "NOT MET"


def target_row(label: str, value: float | None, target: float, op: str, unit: str = "") -> Row:
    if value is None:
        shown = "—"
    elif isinstance(value, float):
        shown = f"{value:,.1f}{unit}"
    else:
        shown = f"{value:,}{unit}"
    return (label, shown, f"{op} {target:g}{unit}", verdict(value, target, op))


def percentile(values: list[float], p: float) -> float | None:
    """The ``p``-th percentile (nearest rank, 0 < p <= 100), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: list[float]) -> dict[str, float | int | None]:
    """p50, p99, mean and max of durations given in seconds, in milliseconds, with the count."""
    ms = [s * 1000 for s in seconds]
    p50, p99 = percentile(ms, 50), percentile(ms, 99)
    return {
        "n": len(ms),
        "p50_ms": None if p50 is None else round(p50, 2),
        "p99_ms": None if p99 is None else round(p99, 2),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else None,
        "max_ms": round(max(ms), 2) if ms else None,
    }
