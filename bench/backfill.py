"""Backfill throughput: snapshot events per second into one subscriber, against its live throughput.

Both figures come from one run of the real pieces (a serving sidecar reading a SQLite table by keyset
pages, the broker, the subscribing sidecar applying with its inbox), measured by the integration test
``test_backfill_throughput_against_the_live_throughput_of_the_same_sidecar``, which this module runs
with its own private broker (``RABBITSYNC_BROKER_PRIVATE=1``) and reads back:

- live: ``rows`` events already queued, drained by the subscriber's sidecar (events/s from the first
  one applied);
- backfill: ``rows`` rows snapshotted by the publisher's sidecar and applied by the same subscriber,
  from the request to the end marker's ack.

    PYTHONPATH=hack .venv/bin/python bench/backfill.py [--rows 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TEST = (
    "tests/integration/service/test_service_backfill.py"
    "::test_backfill_throughput_against_the_live_throughput_of_the_same_sidecar"
)


def run(rows: int = 2000, timeout: float = 1200.0) -> dict[str, Any]:
    """``{"rows", "live_events_per_s", "backfill_events_per_s", "backfill_over_live"}``; raises on failure."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "backfill.json"
        env = {
            **os.environ,
            "RABBITSYNC_BROKER_PRIVATE": "1",
            "RABBITSYNC_BENCH_ROWS": str(rows),
            "RABBITSYNC_BENCH_JSON": str(result),
        }
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST]
        done = subprocess.run(command, cwd=REPO, env=env, timeout=timeout, capture_output=True, text=True)
        if done.returncode != 0 or not result.exists():
            raise RuntimeError(
                f"backfill bench failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
            )
        return dict(json.loads(result.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    print(json.dumps(run(args.rows), indent=2))


if __name__ == "__main__":
    main()
