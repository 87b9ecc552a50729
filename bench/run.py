"""``make bench``: the issue-11 figures side by side in one run, a table of ratios, and JSON.

Sections (each also runs alone, see its module):

- ``publish``: the publish primitive (``publish_throughput``): pipelined confirms vs the seed's
  connection per publish vs confirm-each;
- ``scale``: the operator at scale (``operator_scale``): N subscriptions to Ready, drift repair,
  operator RSS and idle CPU, its AMQP connections.

Ratios first: the machine is shared and noisy, so absolute numbers compare only within one run.

    RABBITSYNC_BROKER_PRIVATE=1 make bench [BENCH_ARGS="--subscriptions 200 --json bench.json"]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import operator_scale
import publish_throughput

from harness import rabbitmq

TARGETS = {
    "ready_s": ("1,000 subscriptions -> all Ready (s)", 120.0, "<="),
    "drift_repair_s": ("drift repaired (s)", 60.0, "<="),
    "operator_rss_mb": ("operator RSS (MB)", 200.0, "<"),
    "idle_cpu_percent": ("operator idle CPU (% of a core)", 5.0, "<"),
    "operator_connections": ("operator AMQP connections per broker", 1.0, "<="),
}


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


def _met(value: float | None, target: float, op: str) -> str:
    if value is None:
        return "not measured (timed out)"
    return "met" if (value <= target if op == "<=" else value < target) else "NOT MET"


def table(results: dict[str, Any]) -> str:
    lines = ["| figure | measured | target | |", "| --- | --- | --- | --- |"]
    rates = results.get("publish")
    if rates:
        seed, each, ours = rates["connection_per_publish"], rates["confirm_each"], rates["pipelined"]
        lines.append(
            f"| publish: pipelined / connection-per-publish | {ours / seed:.1f}x ({ours:.0f} vs {seed:.0f}/s) "
            "| keep | |"
        )
        lines.append(f"| publish: pipelined / confirm-each | {ours / each:.1f}x ({each:.0f}/s) | keep | |")
    scale = results.get("scale")
    if scale:
        for key, (label, target, op) in TARGETS.items():
            value = scale.get(key)
            label = label.replace("1,000", f"{scale['subscriptions']:,}")
            lines.append(f"| {label} | {value} | {op} {target:g} | {_met(value, target, op)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000, help="publish section: events per variant")
    parser.add_argument("--subscriptions", type=int, default=1000, help="scale section: subscriptions")
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="scale section: quiet window for CPU")
    parser.add_argument("--only", choices=("publish", "scale"), help="run one section")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"))
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "publish"):
            broker = rabbitmq.start(Path(tmp) / "rabbitmq-publish")
            try:
                results["publish"] = publish_throughput.run(broker.amqp_url, args.events)
            finally:
                rabbitmq.stop(broker)
        if args.only in (None, "scale"):
            results["scale"] = operator_scale.run(args.subscriptions, args.idle_seconds, 600.0, Path(tmp) / "scale")
    print()
    print(table(results))
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
