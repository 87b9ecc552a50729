"""``rabbitsync unroutable list|replay``: events the shared exchange could route to no subscription.

They wait in the queue of the exchange's alternate exchange (``<exchange>.unroutable``, set by the
operator's policy) until a subscription for their type exists; then ``replay`` sends them on, each as
its original publisher, with the routing key it was published with. Give the broker with
``--amqp-url`` (a user that may read that queue, e.g. the SyncBroker's) and each publisher's own
URI with ``--publisher-url`` (its Secret ``rabbitsync-<service>``): a sidecar applies an event only
from the broker user its ``source`` names. Every event is confirmed by the broker before it leaves the
queue, and one still without a subscriber comes straight back: running replay twice is safe.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from rabbitsync.cli import output
from rabbitsync.cli.failures import OK, PROBLEMS, UsageError
from rabbitsync.cli.kube import Cluster
from rabbitsync.cli.output import Column
from rabbitsync.conventions import DEFAULT_EXCHANGE
from rabbitsync.deadletters.unroutable import Entry, UnroutableQueue
from rabbitsync.transport import BrokerEndpoint

NAME = "unroutable"
HELP = "count, list and replay events no subscription took (kept by the exchange's alternate exchange)"
COLUMNS = (
    Column("ID", "message_id"),
    Column("TYPE", "type"),
    Column("PUBLISHER", "publisher"),
    Column("ROUTING KEY", "routing_key"),
)


def configure(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (
        ("list", "each unroutable event: id, type, publisher, routing key (nothing consumed or counted)"),
        ("replay", "publish them to the exchange again as their publishers, confirmed before removal"),
    ):
        sub = actions.add_parser(name, parents=parents, help=text, description=text)
        sub.add_argument(
            "--exchange", default=DEFAULT_EXCHANGE, help=f"the shared exchange (default {DEFAULT_EXCHANGE})"
        )
        sub.add_argument("--type", help="only events of this type")
        if name == "replay":
            sub.add_argument(
                "--publisher-url",
                action="append",
                default=[],
                help="a publishing service's broker URI (repeatable): its events are replayed as that user",
            )
    parser.set_defaults(run=run, needs_clusters=False)


def _queue(args: argparse.Namespace) -> UnroutableQueue:
    if not args.amqp_url:
        raise UsageError("no broker: pass --amqp-url or set RABBITSYNC_AMQP_URL")
    return UnroutableQueue(BrokerEndpoint(args.amqp_url, args.management_url), args.exchange)


def _rows(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    return [vars(entry) for entry in entries]


def do_list(args: argparse.Namespace) -> int:
    queue = _queue(args)
    with output.progress(f"reading {queue.queue}") as progress:
        entries = [e for e in queue.look(progress).entries if args.type in (None, e.type)]
    if args.fmt != "table":
        output.emit(output.serialise(_rows(entries), args.fmt), args.stdout)
    elif not entries:
        print(f"no unroutable events{f' of type {args.type}' if args.type else ''}", file=sys.stderr)
    else:
        output.emit(output.table(_rows(entries), COLUMNS, colour=output.colour_wanted(args.stdout)), args.stdout)
    return PROBLEMS if args.type and not entries else OK  # a filter that matched nothing


def do_replay(args: argparse.Namespace) -> int:
    publishers = {e.username: e for e in (BrokerEndpoint(url) for url in args.publisher_url)}
    queue = _queue(args)
    with output.progress(f"replaying from {queue.queue}") as progress:
        outcome = queue.replay(lambda entry: args.type in (None, entry.type), publishers, progress)
    failed = [{"id": e.message_id, "error": why} for e, why in outcome.failed]
    if args.fmt != "table":
        summary = {"replayed": [e.message_id for e in outcome.replayed], "failed": failed}
        output.emit(output.serialise(summary, args.fmt), args.stdout)
    else:
        for failure in failed:
            print(f"rabbitsync: not replayed: {failure['id']}: {failure['error']}; it stays", file=sys.stderr)
        print(f"replayed {len(outcome.replayed)} unroutable event(s) to {args.exchange}", file=args.stdout)
    matched = outcome.replayed or outcome.failed
    return PROBLEMS if outcome.failed or (args.type and not matched) else OK


def run(args: argparse.Namespace, _clusters: Sequence[Cluster]) -> int:
    return do_list(args) if args.action == "list" else do_replay(args)
