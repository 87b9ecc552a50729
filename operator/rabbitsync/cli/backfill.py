"""``rabbitsync backfill NAMESPACE/SUBSCRIPTION``: ask for a backfill of a subscription, and follow it.

For the restored-database case, or a replica that started empty. The command sets the annotation
``rabbitsync.io/backfill`` on the subscription to a new value (what ``kubectl annotate`` does too),
and the subscription's operator does the rest: it asks the publishers of its types (its own cluster's,
else the other cluster's) for their current state and reports progress in ``status.backfill`` and the
``BackfillComplete`` condition. ``--wait`` follows that status until the backfill is complete (exit 0)
or ``--timeout`` passes (exit 1), printing each change.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rabbitsync.api.syncsubscription import BACKFILL_ANNOTATION, BACKFILL_COMPLETE
from rabbitsync.cli import output
from rabbitsync.cli.dlq import find_subscription
from rabbitsync.cli.failures import OK, PROBLEMS, NothingMatched
from rabbitsync.cli.kube import Cluster
from rabbitsync.cli.output import Column
from rabbitsync.cli.resources import Resource

NAME = "backfill"
HELP = "ask the publishers to send a subscription their current state (and follow it with --wait)"
POLL_SECONDS = 2.0
COLUMNS = (
    Column("CLUSTER", "cluster"),
    Column("SUBSCRIPTION", "subscription"),
    Column("TRIGGER", "trigger"),
    Column("PHASE", "phase"),
    Column("SENT", "sent"),
    Column("APPLIED", "applied"),
    Column("REASON", "reason"),
)


def configure(parser: argparse.ArgumentParser, _parents: list[argparse.ArgumentParser]) -> None:
    parser.add_argument("subscription", metavar="NAMESPACE/SUBSCRIPTION")
    parser.add_argument("--cluster", help="the subscription's cluster, when it exists in several")
    parser.add_argument("--wait", action="store_true", help="follow the backfill until it is complete")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds --wait waits at most (600)")
    parser.set_defaults(run=run)


def progress(resource: Resource, trigger: str) -> dict[str, Any]:
    """One row: where the backfill ``trigger`` names stands, as the subscription's status says."""
    backfill: Mapping[str, Any] = resource.status.get("backfill") or {}
    ours = backfill.get("trigger") == trigger
    condition = next((c for c in resource.status.get("conditions") or [] if c.get("type") == BACKFILL_COMPLETE), None)
    return {
        "cluster": resource.cluster,
        "subscription": resource.ref,
        "trigger": trigger,
        "phase": backfill.get("phase") if ours else "Requested",
        "sent": backfill.get("sent", 0) if ours else 0,
        "applied": backfill.get("applied", 0) if ours else 0,
        "reason": (condition or {}).get("reason", "") if ours else "",
        "message": (condition or {}).get("message", "") if ours else "",
    }


def follow(
    read: Callable[[], Resource | None],
    trigger: str,
    timeout: float,
    emit: Callable[[dict[str, Any]], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Emit each change of the backfill's progress until it is complete (True) or ``timeout`` passes."""
    deadline, last = clock() + timeout, None
    while True:
        resource = read()
        if resource is None:
            raise NothingMatched("the subscription was deleted")
        row = progress(resource, trigger)
        if row != last:
            emit(row)
            last = row
        if row["phase"] == "Complete":
            return True
        if clock() >= deadline:
            return False
        sleep(POLL_SECONDS)


def run(args: argparse.Namespace, clusters: Sequence[Cluster]) -> int:
    cluster, subscription = find_subscription(args, clusters)
    trigger = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    cluster.annotate_subscription(subscription.namespace, subscription.name, {BACKFILL_ANNOTATION: trigger})
    rows: list[dict[str, Any]] = []
    done = True
    if args.wait:
        table = args.fmt == "table"

        def emit(row: dict[str, Any]) -> None:
            rows.append(row)
            if table:  # one line per change, as it happens
                line = (
                    f"{row['phase']}: {row['applied']} of {row['sent']} events applied {row['reason']} {row['message']}"
                )
                output.emit(line.rstrip(), args.stdout)

        done = follow(
            lambda: cluster.subscription(subscription.namespace, subscription.name), trigger, args.timeout, emit
        )
        if not table:
            output.emit(output.serialise(rows[-1:], args.fmt), args.stdout)
    else:
        row = progress(subscription, trigger)
        output.emit(
            output.table([row], COLUMNS) if args.fmt == "table" else output.serialise([row], args.fmt), args.stdout
        )
    return OK if done else PROBLEMS
