"""``make bench``: the issue-11 figures side by side in one run, one table of ratios, and JSON.

Sections are listed once, in ``SECTIONS``; each is a module of ``bench/`` with a ``run(...) -> dict``
(each also runs alone, see its docstring). A section whose module is not in this checkout is reported
as absent, never an error, so a branch can register a section before its module lands. A module may
also define ``table_rows(result) -> list[Row]`` (otherwise every number of its result is one row)
and ``add_arguments(parser)`` for its own knobs.

- ``publish``: the publish primitive (``publish_throughput``): pipelined confirms vs the seed's
  connection per publish vs confirm-each;
- ``relay``: the real relay (``relay``): outbox rows committed -> confirmed -> marked sent, and where
  the time of one row goes;
- ``e2e``: end to end on the demo's services (``e2e``): POST in east -> row in west's restaurant-menu,
  one write at a time and at fixed offered rates, with the per-stage breakdown;
- ``sidecar``: the sidecar vs a hand-written consumer (per message, batched, ack only), and its RSS;
- ``scale``: the operator at scale (``operator_scale``): N subscriptions to Ready, drift repair,
  operator RSS and idle CPU, its AMQP connections;
- ``backfill``: a backfill's rate (``backfill``);
- ``policies``: what the broker spends on a subscription's quorum queues and on its per-queue
  delivery-limit policy (``broker_policies``), the cost that grows with queues times policies.

Ratios first: the machine is shared and noisy, so absolute numbers compare only within one run.

    RABBITSYNC_BROKER_PRIVATE=1 make bench [BENCH_ARGS="--only e2e --duration 10 --json bench.json"]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from rows import Row, target_row

from harness import rabbitmq


@dataclass(frozen=True)
class Section:
    name: str
    module: str
    """The module of ``bench/`` that measures it (imported only when the section runs)."""
    call: Callable[[ModuleType, argparse.Namespace, Path], dict[str, Any]]
    """Runs it: (module, parsed arguments, a scratch directory of its own) -> its result."""


def _publish(module: ModuleType, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    with rabbitmq.running(scratch / "rabbitmq") as broker:
        return dict(module.run(broker.amqp_url, args.events))


def _sidecar(module: ModuleType, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    with rabbitmq.running(scratch / "rabbitmq") as broker:
        return dict(module.run(broker.amqp_url, broker.management_url, events=args.sidecar_events, workdir=scratch))


def _policies(module: ModuleType, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    with rabbitmq.running(scratch / "rabbitmq") as broker:
        return dict(module.run(broker, args.policy_subscriptions))


def publish_rows(rates: dict[str, Any]) -> list[Row]:
    seed, each, ours = rates["connection_per_publish"], rates["confirm_each"], rates["pipelined"]
    return [
        ("publish: pipelined / connection-per-publish", f"{ours / seed:.1f}x ({ours:.0f} vs {seed:.0f}/s)", "keep", ""),
        ("publish: pipelined / confirm-each", f"{ours / each:.1f}x ({each:.0f}/s)", "keep", ""),
    ]


SCALE_TARGETS = {
    "ready_s": ("{n} subscriptions -> all Ready (s)", 120.0, "<="),
    "ready_but_a_condition_not_true": ("Ready with another condition not True, after the quiet window", 0.0, "<="),
    "drift_repair_s": ("drift repaired (s)", 60.0, "<="),
    "operator_rss_mb": ("operator RSS (MB)", 200.0, "<"),
    "idle_cpu_percent": ("operator idle CPU (% of a core)", 5.0, "<"),
    "operator_connections": ("operator AMQP connections per broker", 1.0, "<="),
}


def scale_rows(scale: dict[str, Any]) -> list[Row]:
    rows = [
        target_row(label.format(n=f"{scale['subscriptions']:,}"), scale.get(key), target, op)
        for key, (label, target, op) in SCALE_TARGETS.items()
    ]
    split = dict(scale.get("converging_cpu_percent") or {})
    if split:
        busy = split.pop("machine_busy_of_all_cores", None)
        shares = ", ".join(f"{name} {share}" for name, share in sorted(split.items(), key=lambda kv: -kv[1]))
        rows.append(("scale: CPU until all Ready, % of one core", f"{shares}; all cores {busy} % busy", "", ""))
    return rows


SECTIONS: list[Section] = [
    Section("publish", "publish_throughput", _publish),
    Section("relay", "relay", lambda m, a, d: m.run(a.relay_rows, d)),
    Section("e2e", "e2e", lambda m, a, d: m.run(a.rates, a.duration, a.serial_writes)),
    Section("sidecar", "sidecar", _sidecar),
    Section("backfill", "backfill", lambda m, a, d: m.run(a.backfill_rows)),
    Section("scale", "operator_scale", lambda m, a, d: m.run(a.subscriptions, a.idle_seconds, 600.0, d)),
    Section("policies", "broker_policies", _policies),
]
"""Run in this order; the integrator adds one line per new section."""

ROWS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {"publish": publish_rows, "scale": scale_rows}
"""Rows of sections whose module predates ``table_rows``."""


def load(section: Section) -> ModuleType | None:
    """The section's module, or None when this checkout does not have it."""
    try:
        return importlib.import_module(section.module)
    except ModuleNotFoundError as e:
        if e.name != section.module:
            raise
        return None


def generic_rows(name: str, result: dict[str, Any]) -> list[Row]:
    return [
        (f"{name}: {key}", f"{value:,.1f}" if isinstance(value, float) else str(value), "", "")
        for key, value in result.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]


def rows_of(section: Section, module: ModuleType | None, result: dict[str, Any] | None) -> list[Row]:
    if result is None:
        return [(f"{section.name}", "not run", "", "")]
    if "error" in result:
        return [(f"{section.name}", f"failed: {result['error']}", "", "")]
    if section.name in ROWS:
        return ROWS[section.name](result)
    render = getattr(module, "table_rows", None)
    return list(render(result)) if render is not None else generic_rows(section.name, result)


def table(results: dict[str, Any]) -> str:
    lines = ["| figure | measured | target | |", "| --- | --- | --- | --- |"]
    for section in SECTIONS:
        if section.name not in results:
            continue
        module = load(section)
        lines += ["| " + " | ".join(row) + " |" for row in rows_of(section, module, results[section.name])]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {"cpu": model, "cores": os.cpu_count(), "load_1m": os.getloadavg()[0], "python": platform.python_version()}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=5000, help="publish: events per variant")
    p.add_argument("--relay-rows", type=int, default=2000, help="relay: outbox rows to send")
    p.add_argument("--rates", default="50,200", help="e2e: offered writes/s, comma-separated")
    p.add_argument("--duration", type=float, default=60.0, help="e2e: seconds per offered rate")
    p.add_argument("--serial-writes", type=int, default=200, help="e2e: writes one at a time")
    p.add_argument("--sidecar-events", type=int, default=5000, help="sidecar: events per variant")
    p.add_argument("--backfill-rows", type=int, default=2000, help="backfill: restaurants to backfill")
    p.add_argument("--subscriptions", type=int, default=1000, help="scale: subscriptions")
    p.add_argument("--idle-seconds", type=float, default=60.0, help="scale: quiet window for CPU")
    p.add_argument("--only", action="append", choices=[s.name for s in SECTIONS], help="run these sections")
    p.add_argument("--json", type=Path, default=Path("bench-results.json"))
    for section in SECTIONS:
        module = load(section)
        if module is not None and hasattr(module, "add_arguments"):
            module.add_arguments(p)
    return p


def run_section(section: Section, args: argparse.Namespace, scratch: Path) -> dict[str, Any] | None:
    """Its result; None when its module is absent; ``{"error": ...}`` when it failed (the others still run)."""
    module = load(section)
    if module is None:
        print(f"==> {section.name}: bench/{section.module}.py is not in this checkout, skipped", flush=True)
        return None
    print(f"==> {section.name}", flush=True)
    try:
        return section.call(module, args, scratch / section.name)
    except Exception as e:
        traceback.print_exc()
        return {"error": f"{type(e).__name__}: {e}"}


def main() -> None:
    args = parser().parse_args()
    results: dict[str, Any] = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with tempfile.TemporaryDirectory() as tmp:
        for section in SECTIONS:
            if args.only is None or section.name in args.only:
                (Path(tmp) / section.name).mkdir()
                results[section.name] = run_section(section, args, Path(tmp))
    print()
    print(table(results))
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
