"""``rabbitsync status``: every subscription and publication of every cluster given, problems first.

The numbers are the operator's last observation (``status``), not a fresh look at the broker: the
command needs no broker credentials and answers as fast as the API servers. Exit 1 when anything is
not Ready or when nothing is found, so ``rabbitsync status -n foodapp`` can gate a deployment script.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from rabbitsync.cli import output
from rabbitsync.cli.failures import OK, PROBLEMS
from rabbitsync.cli.kube import Cluster
from rabbitsync.cli.output import Column
from rabbitsync.cli.resources import PUBLICATION, SUBSCRIPTION, Resource

COLUMNS = (
    Column("CLUSTER", "cluster"),
    Column("KIND", "kind"),
    Column("NAMESPACE/NAME", "resource"),
    Column("SERVICE", "service"),
    Column("EVENTS", "events"),
    Column("READY", "ready", output.ready_colour),
    Column("REASON", "reason"),
    Column("DEPTH", "queueDepth"),
    Column("CONSUMERS", "consumers"),
    Column("DEAD", "deadLettered"),
    Column("SIDECAR", "sidecar"),
)
_SHORT_KIND = {SUBSCRIPTION: "ssub", PUBLICATION: "spub"}


NAME = "status"
HELP = "Ready, queue depth, consumers, dead letters and sidecar of every subscription and publication"


def configure(parser: argparse.ArgumentParser, _parents: list[argparse.ArgumentParser]) -> None:
    parser.add_argument("-n", "--namespace", help="only this namespace (default: all)")
    parser.set_defaults(run=run)


def collect(clusters: Sequence[Cluster], namespace: str | None) -> list[Resource]:
    found: list[Resource] = []
    for cluster in clusters:
        for kind in (SUBSCRIPTION, PUBLICATION):
            found.extend(r for r in cluster.resources(kind) or [] if namespace in (None, r.namespace))
    return sorted(found, key=lambda r: (r.is_ready, r.namespace, r.name, r.kind, r.cluster))


def row(resource: Resource) -> dict[str, Any]:
    status = resource.status
    sidecar = resource.sidecar
    return {
        "cluster": resource.cluster,
        "kind": _SHORT_KIND.get(resource.kind, resource.kind),
        "resource": resource.ref,
        "namespace": resource.namespace,
        "name": resource.name,
        "service": resource.service,
        "events": list(resource.events),
        "ready": resource.ready.status if resource.ready else "Unknown",
        "reason": (resource.ready.reason if resource.ready else None) or "NotReconciled",
        "message": resource.ready.message if resource.ready else None,
        "queueDepth": status.get("queueDepth"),
        "consumers": status.get("consumers"),
        "deadLettered": status.get("deadLettered"),
        "unroutable": status.get("unroutable"),
        "sidecar": f"{sidecar.status}/{sidecar.reason}" if sidecar and sidecar.reason else None,
    }


def render(resources: Sequence[Resource], fmt: output.Format, colour: bool) -> str:
    rows = [row(r) for r in resources]
    if fmt != "table":
        return output.serialise(rows, fmt)
    if not rows:
        return "no SyncSubscriptions or SyncPublications found"
    return output.table([{**r, "events": _short(r["events"])} for r in rows], COLUMNS, colour=colour)


def _short(events: list[str], keep: int = 3) -> str:
    """The first few types and how many more: the full list is in -o json|yaml."""
    more = len(events) - keep
    return ",".join(events[:keep]) + (f" +{more}" if more > 0 else "")


def run(args: argparse.Namespace, clusters: Sequence[Cluster]) -> int:
    resources = collect(clusters, args.namespace)
    output.emit(render(resources, args.fmt, output.colour_wanted(args.stdout)), args.stdout)
    return PROBLEMS if not resources or any(not r.is_ready for r in resources) else OK
