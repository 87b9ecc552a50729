"""``rabbitsync topology``: who publishes and who consumes each event type, and what does not match.

Without ``--format`` it prints a table per event type (or ``-o json|yaml``) followed by the parity
problems; ``--format mermaid|dot|svg|png`` draws the picture instead, to ``--output FILE`` or stdout
(PNG only to a file), with the problems on stderr. Unowned queues are looked up through the management
API of ``--management-url`` (``$RABBITSYNC_MANAGEMENT_URL``; the vhost is ``--amqp-url``'s, else
``/``), else of every SyncBroker's Secret; when none answers, that check is skipped with a note.
Exit 1 when a parity problem is found.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from rabbitsync.amqp.management import ManagementClient
from rabbitsync.cli import output, render
from rabbitsync.cli.failures import OK, PROBLEMS, UsageError
from rabbitsync.cli.graph import Topology, build
from rabbitsync.cli.kube import Cluster, syncbroker_endpoints
from rabbitsync.cli.output import Column
from rabbitsync.cli.resources import PUBLICATION, SUBSCRIPTION, Resource
from rabbitsync.topology import naming
from rabbitsync.transport import BrokerEndpoint, BrokerError

COLUMNS = (
    Column("NAMESPACE", "namespace"),
    Column("EVENT TYPE", "type"),
    Column("PUBLISHED BY", "publishers"),
    Column("CONSUMED BY", "consumers"),
)
_PAGE_SIZE = 500


NAME = "topology"
HELP = "who publishes and consumes each event type per cluster; parity problems"


def configure(parser: argparse.ArgumentParser, _parents: list[argparse.ArgumentParser]) -> None:
    parser.add_argument("-n", "--namespace", help="only this namespace (default: all)")
    parser.add_argument(
        "--format", dest="graph", choices=(*render.TEXT_FORMATS, *render.IMAGE_FORMATS), help="draw a graph"
    )
    parser.add_argument("--output", dest="file", type=Path, metavar="FILE", help="write the graph here, not to stdout")
    parser.set_defaults(run=run)


class QueueNames(ManagementClient):
    """The management client, asked for every queue name under a prefix (not one subscription's)."""

    def names(self, prefix: str) -> list[str]:
        found: list[str] = []
        page, pages = 1, 1
        while page <= pages:
            query = urlencode(
                {"page": page, "page_size": _PAGE_SIZE, "name": f"^{prefix}", "use_regex": "true", "columns": "name"}
            )
            body = self._get(f"/api/queues/{self._vhost}?{query}")
            pages = int(body.get("page_count", 1))
            found += [item["name"] for item in body.get("items", [])]
            page += 1
        return found


def endpoints(args: argparse.Namespace, clusters: Sequence[Cluster]) -> list[BrokerEndpoint]:
    """The brokers to list queues on: the one given, else each SyncBroker's (one per host and vhost)."""
    if args.management_url:
        amqp = args.amqp_url or f"amqp://{urlsplit(args.management_url).hostname}/"
        return [BrokerEndpoint(amqp, args.management_url)]
    if args.amqp_url:
        return [BrokerEndpoint(args.amqp_url)]
    return syncbroker_endpoints(clusters, lambda endpoint: (endpoint.management().base_url, endpoint.vhost))


def broker_queues(args: argparse.Namespace, clusters: Sequence[Cluster]) -> list[str] | None:
    """Every rabbitsync queue name on the broker(s), or None (with a note) when none could be listed."""
    try:
        found = endpoints(args, clusters)
        names = [q for e in found for q in QueueNames(e).names(quote(naming.PREFIX) + r"\.")]
    except BrokerError as e:
        print(f"rabbitsync: note: unowned queues not checked: {e}", file=sys.stderr)
        return None
    if not found:
        print(
            "rabbitsync: note: unowned queues not checked: no readable (Cluster)SyncBroker, pass --management-url",
            file=sys.stderr,
        )
        return None
    return names


def collect(clusters: Sequence[Cluster], namespace: str | None) -> tuple[list[Resource], bool]:
    """Every subscription and publication, and whether any cluster has the SyncPublication CRD."""
    found: list[Resource] = []
    publications_known = False
    for cluster in clusters:
        found += cluster.resources(SUBSCRIPTION) or []
        publications = cluster.resources(PUBLICATION)
        publications_known = publications_known or publications is not None
        found += publications or []
    return [r for r in found if namespace in (None, r.namespace)], publications_known


def document(topology: Topology) -> dict[str, Any]:
    """The topology as JSON/YAML (and as the table's rows under ``eventTypes``)."""
    return {
        "clusters": list(topology.clusters),
        "publicationsKnown": topology.publications_known,
        "eventTypes": [
            {
                "namespace": namespace,
                "type": event_type,
                "publishers": [f"{c}/{s}" for c, s in topology.services(namespace, event_type, "publishes")],
                "consumers": [f"{c}/{s}" for c, s in topology.services(namespace, event_type, "consumes")],
            }
            for namespace, event_type in topology.event_types()
        ],
        "unownedQueues": list(topology.unowned_queues),
        "problems": [
            {"kind": p.kind, "namespace": p.namespace, "subject": p.subject, "detail": p.detail}
            for p in topology.problems
        ],
    }


def problem_lines(topology: Topology, colour: bool) -> list[str]:
    lines = [
        f"{output.paint('problem', 'red', colour)} [{p.kind}] {p.namespace}: {p.detail}" for p in topology.problems
    ]
    if not topology.publications_known:
        lines.append("note: no cluster has the SyncPublication CRD: publishers unknown, one-sided types not checked")
    return lines


def render_table(topology: Topology, colour: bool) -> str:
    rows = document(topology)["eventTypes"]
    text = output.table(rows, COLUMNS) if rows else "no event types found"
    return "\n".join([text, *([""] if topology.problems else []), *problem_lines(topology, colour)])


def draw(topology: Topology, fmt: str, target: Path | None) -> None:
    source = render.mermaid(topology) if fmt == "mermaid" else render.dot(topology)
    data = render.image(source, fmt) if fmt in render.IMAGE_FORMATS else source.encode()
    if target is not None:
        target.write_bytes(data)
    elif fmt == "png":
        raise UsageError("--format png needs --output FILE")
    else:
        sys.stdout.write(data.decode())
    for line in problem_lines(topology, output.colour_wanted(sys.stderr)):
        print(line, file=sys.stderr)


def run(args: argparse.Namespace, clusters: Sequence[Cluster]) -> int:
    resources, publications_known = collect(clusters, args.namespace)
    topology = build(
        resources,
        [c.label for c in clusters],
        publications_known=publications_known,
        queues=broker_queues(args, clusters),
        namespace=args.namespace,
    )
    if args.graph:
        draw(topology, args.graph, args.file)
    elif args.fmt != "table":
        output.emit(output.serialise(document(topology), args.fmt), args.stdout)
    else:
        output.emit(render_table(topology, output.colour_wanted(args.stdout)), args.stdout)
    return PROBLEMS if topology.problems or not resources else OK
