"""``rabbitsync trace EVENT_ID``: where one event went, in every cluster given.

The source is the trace stream of the shared exchange (``<exchange>.trace``, declared by the
operators): relays append a record when the broker confirmed an event (``published``), sidecars one
when the event's fate in a queue is settled (``applied``, ``duplicate``, ``own``, ``retried`` with
the error, ``dead-lettered`` with the reason). It is the cheapest honest source on a shared broker:
the queues forget what they delivered, logs are spread over pods and clusters, and the inboxes
record only what was applied. The records are best effort (a writer whose broker was away when the
outcome happened keeps none), so an expected queue without a record is shown as such, not as lost.

Which queues an event was routed to comes from the clusters' SyncSubscriptions: those of the
event's namespace that list its type (the bindings the operators made from them). The stream is
read from its start (``--since`` to start later) with the broker's credentials: ``--amqp-url``, else
the SyncBrokers' Secrets. Each record names the broker user that wrote it, as the broker verified
it; one whose claimed replica is not that user's is marked unverified. Exit 1 when no record of the
event is found.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rabbitsync.cli import output
from rabbitsync.cli.failures import OK, CliError, NothingMatched, UsageError
from rabbitsync.cli.kube import Cluster, syncbroker_endpoints
from rabbitsync.cli.output import Column
from rabbitsync.cli.resources import SUBSCRIPTION, Resource
from rabbitsync.conventions import DEFAULT_EXCHANGE, broker_username, trace_name
from rabbitsync.events import trace
from rabbitsync.transport import BrokerEndpoint, NotFound, StreamEntry, read_stream

NAME = "trace"
HELP = "where one event went: published, routed, applied, retried or dead-lettered, in every cluster"

_OUTCOME_COLOURS = {trace.APPLIED: "green", trace.DEAD_LETTERED: "red", "no": "yellow", trace.RETRIED: "yellow"}
ROUTE_COLUMNS = (
    Column("CLUSTER", "cluster"),
    Column("SERVICE", "service"),
    Column("QUEUE", "queue"),
    Column("OUTCOME", "outcome", lambda value: _OUTCOME_COLOURS.get(str(value).split(" ")[0])),
    Column("RETRIES", "retries"),
    Column("AT", "at"),
)
RECORD_COLUMNS = (
    Column("TIME", "at"),
    Column("CLUSTER", "cluster"),
    Column("SERVICE", "service"),
    Column("POD", "pod"),
    Column("WHAT", "kind"),
    Column("ATTEMPT", "attempt"),
    Column("DETAIL", "detail"),
)
_SETTLED = (trace.APPLIED, trace.DUPLICATE, trace.OWN, trace.DEAD_LETTERED)
_SINCE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def configure(parser: argparse.ArgumentParser, _parents: list[argparse.ArgumentParser]) -> None:
    parser.add_argument("event_id", metavar="EVENT_ID")
    parser.add_argument("--since", help="read records of the last DURATION only (30s, 15m, 2h, 7d; default: all kept)")
    parser.add_argument("--exchange", help="the shared exchange (default: the subscriptions' own)")
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class Route:
    """A queue the event's routing key is bound to, and what its records say became of it there."""

    cluster: str
    service: str
    queue: str
    outcome: str
    retries: int
    at: str | None


# -- reading ---------------------------------------------------------------------------------------


def since(text: str | None, now: datetime | None = None) -> str | datetime:
    """The stream offset to start from: ``first``, or the time ``text`` (``2h``...) ago."""
    if text is None:
        return "first"
    match = _SINCE.match(text)
    if match is None:
        raise UsageError(f"--since {text!r}: expected a number and a unit (s, m, h, d), e.g. 2h")
    delta = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    return (now or datetime.now(UTC)) - delta


def endpoints(args: argparse.Namespace, clusters: Sequence[Cluster]) -> list[BrokerEndpoint]:
    """The brokers to read: ``--amqp-url``, else each distinct broker of the clusters' (Cluster)SyncBrokers."""
    if args.amqp_url:
        return [BrokerEndpoint(args.amqp_url)]
    found = syncbroker_endpoints(clusters, lambda endpoint: (endpoint.host, endpoint.vhost))
    if not found:
        raise UsageError(
            "no broker: no readable SyncBroker or ClusterSyncBroker in the clusters given; pass --amqp-url"
        )
    return found


def exchanges(args: argparse.Namespace, subscriptions: Sequence[Resource]) -> list[str]:
    if args.exchange:
        return [args.exchange]
    named = {s.status.get("exchange") for s in subscriptions}
    return sorted(e for e in named if isinstance(e, str) and e) or [DEFAULT_EXCHANGE]


def read_records(
    endpoint: BrokerEndpoint, stream: str, event_id: str, start: str | datetime
) -> list[trace.TraceRecord] | None:
    """The records of ``event_id`` in ``stream``; None if the broker has no such stream."""
    try:
        with output.progress(f"reading {stream}") as progress:
            entries = read_stream(
                endpoint, stream, start=start, select=lambda entry: entry.message_id == event_id, progress=progress
            )
    except NotFound:
        return None
    return [r for r in (_decoded(e) for e in entries) if r is not None and r.event_id == event_id]


def _decoded(entry: StreamEntry) -> trace.TraceRecord | None:
    return trace.decode(entry.body, writer=entry.user_id)


# -- putting it together (pure) --------------------------------------------------------------------


def verified(record: trace.TraceRecord) -> bool:
    """The record's writer is the broker user of the replica it names."""
    return record.writer == broker_username(record.cluster, record.namespace, record.service)


def routes(records: Sequence[trace.TraceRecord], subscriptions: Sequence[Resource]) -> list[Route]:
    """Every queue bound to the event's key, and every queue a record came from, with its outcome."""
    event_type = next((r.type for r in records if r.type), None)
    namespaces = {r.namespace for r in records}
    expected: dict[str, tuple[str, str]] = {}
    for sub in subscriptions:
        queue = sub.status.get("queue")
        if sub.namespace in namespaces and event_type in sub.events and isinstance(queue, str):
            expected[queue] = (sub.cluster, sub.service)
    for record in records:
        if record.queue and record.queue not in expected:
            expected[record.queue] = (record.cluster, record.service)
    return sorted(
        (
            _route(queue, cluster, service, [r for r in records if r.queue == queue])
            for queue, (cluster, service) in expected.items()
        ),
        key=lambda r: (r.cluster, r.service, r.queue),
    )


def _route(queue: str, cluster: str, service: str, records: Sequence[trace.TraceRecord]) -> Route:
    retries = sum(1 for r in records if r.kind == trace.RETRIED)
    settled = [r for r in records if r.kind in _SETTLED]
    if settled:
        last = settled[-1]
        outcome = last.kind + (f" ({last.reason})" if last.reason else "")
        return Route(cluster, service, queue, outcome, retries, last.at)
    if retries:
        return Route(cluster, service, queue, f"{trace.RETRIED}, not settled yet", retries, records[-1].at)
    return Route(cluster, service, queue, "no record (not consumed yet, or its record was lost)", 0, None)


def summary(event_id: str, records: Sequence[trace.TraceRecord]) -> dict[str, Any]:
    published = next((r for r in records if r.kind == trace.PUBLISHED), None)
    source = next((r.source for r in records if r.source), None)
    if published is not None:
        source = f"{published.cluster}/{published.namespace}/{published.service}"
    return {
        "id": event_id,
        "type": next((r.type for r in records if r.type), None),
        "subject": next((r.subject for r in records if r.subject), None),
        "publisher": source,
        "publisherPod": published.pod if published else None,
        "publishedAt": published.at if published else None,
        "eventTime": next((r.event_time for r in records if r.event_time), None),
    }


def record_row(record: trace.TraceRecord) -> dict[str, Any]:
    detail = [f"queue {record.queue}"] if record.queue else []
    detail += [f"reason {record.reason}"] if record.reason else []
    detail += [record.error] if record.error else []
    if not verified(record):
        detail.append(f"UNVERIFIED: written by {record.writer}")
    return {**asdict(record), "verified": verified(record), "detail": "; ".join(detail)}


def render(event_id: str, records: Sequence[trace.TraceRecord], found: Sequence[Route], colour: bool) -> str:
    head = summary(event_id, records)
    lines = [f"event {event_id}  type {head['type'] or '-'}  subject {head['subject'] or '-'}"]
    published = f" at {head['publishedAt']}" if head["publishedAt"] else ""
    pod = f" (pod {head['publisherPod']})" if head["publisherPod"] else ""
    lines.append(
        f"published by {head['publisher'] or 'unknown'}{pod}{published}; event time {head['eventTime'] or '-'}"
    )
    if head["publishedAt"] is None:
        lines.append("  (no published record: sent before tracing, or by something other than a relay)")
    lines += [
        "",
        "routed to:",
        output.table([asdict(r) for r in found], ROUTE_COLUMNS, colour=colour)
        if found
        else "  no subscription of its namespace lists its type",
    ]
    lines += ["", "records:", output.table([record_row(r) for r in records], RECORD_COLUMNS, colour=colour)]
    return "\n".join(lines)


def run(args: argparse.Namespace, clusters: Sequence[Cluster]) -> int:
    start = since(args.since)
    subscriptions = [r for c in clusters for r in c.resources(SUBSCRIPTION) or []]
    records: list[trace.TraceRecord] = []
    # Each exchange's stream is on its own broker only, and a subscription being deleted may name an
    # exchange whose stream is gone: a stream missing is skipped, unless none is there at all.
    read: list[str] = []
    streams = [trace_name(e) for e in exchanges(args, subscriptions)]
    for endpoint in endpoints(args, clusters):
        for stream in streams:
            in_stream = read_records(endpoint, stream, args.event_id, start)
            if in_stream is not None:
                read.append(stream)
                records += in_stream
    if not read:
        names = ", ".join(streams)
        raise CliError(f"no stream {names} on the broker (operators older than trace, or pass --exchange)")
    if not records:
        raise NothingMatched(f"no trace record of event {args.event_id} in {', '.join(sorted(set(read)))}")
    records.sort(key=lambda r: r.at)
    found = routes(records, subscriptions)
    if args.fmt != "table":
        data = {
            "event": summary(args.event_id, records),
            "routes": [asdict(r) for r in found],
            "records": [record_row(r) for r in records],
        }
        output.emit(output.serialise(data, args.fmt), args.stdout)
    else:
        output.emit(render(args.event_id, records, found, output.colour_wanted(args.stdout)), args.stdout)
    return OK
