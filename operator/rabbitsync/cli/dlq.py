"""``rabbitsync dlq list|show|replay|purge NAMESPACE/SUBSCRIPTION``: a subscription's dead letters.

The queue is the subscription's ``status.deadLetterQueue``. The commands log in as the consuming
service itself, with the identity the operator made for it (Secret ``rabbitsync-<service>``): its
sidecar believes the original publisher of a replayed event only when the replay comes from its own
broker user, and would dead-letter one replayed by anyone else as ``forged-source``. Without that
Secret they fall back to the SyncBroker's Secret; ``--amqp-url`` (``$RABBITSYNC_AMQP_URL``) overrides
both, e.g. when the Secret's host is only reachable inside the cluster. With several clusters,
``--cluster`` picks one (by context or by the operator's cluster name) when the subscription exists in more than one.

Listing and showing never hand a message back to the queue, so no delivery is ever counted against a
quorum queue's delivery limit (see ``rabbitsync.deadletters.queue``): each message looked at is
replaced by a confirmed identical copy at the same place in the order. Replay publishes to the
subscription's queue, waits for the broker's confirm, and only then removes the dead letter; run it
twice and the consumer's inbox applies each event id once. ``rabbitsync dead-letters list|replay
QUEUE`` (the older form, by raw queue name) still works for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rabbitsync.cli import output
from rabbitsync.cli.failures import OK, PROBLEMS, NothingMatched, UsageError
from rabbitsync.cli.kube import Cluster
from rabbitsync.cli.output import Column
from rabbitsync.cli.resources import Resource
from rabbitsync.deadletters import DeadLetter, DeadLetterQueue, PassResult, plain
from rabbitsync.transport import BrokerEndpoint, IncomingMessage

COLUMNS = (
    Column("ID", "message_id"),
    Column("TYPE", "type"),
    Column("SUBJECT", "subject"),
    Column("TIME", "time"),
    Column("REASON", "reason", lambda _value: "red"),
    Column("ATTEMPTS", "attempts"),
    Column("BY", "dead_lettered_by"),
    Column("ERROR", "error"),
)
_ERROR_WIDTH = 80


@dataclass(frozen=True)
class Located:
    """One subscription's DLQ, found in one cluster."""

    cluster: str
    reference: str
    queue: DeadLetterQueue


NAME = "dlq"
HELP = "list, show, replay or purge a subscription's dead letters"


def configure(parser: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = actions.add_parser(name, parents=parents, help=text, description=text)
        sub.add_argument("subscription", metavar="NAMESPACE/SUBSCRIPTION")
        sub.add_argument("--cluster", help="the cluster (context or operator cluster name) when several have it")
        return sub

    action("list", "each dead letter: id, type, subject, time, reason, attempts (nothing consumed or counted)")
    show = action("show", "one dead letter in full: headers and body")
    show.add_argument("id", metavar="ID", help="the event id (message_id)")
    replay = action("replay", "send dead letters back to their subscription queue, confirmed before removal")
    replay.add_argument("--id", dest="ids", action="append", default=[], help="this event id (repeatable)")
    replay.add_argument("--type", help="only events of this type")
    replay.add_argument("--reason", help="only this reason (failed, poison, or the broker's: rejected, expired...)")
    replay.add_argument("--all", action="store_true", help="every dead letter")
    purge = action("purge", "delete the dead letters there are now, after confirmation")
    purge.add_argument("--yes", action="store_true", help="do not ask")
    parser.set_defaults(run=run)


def add_legacy_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """``dead-letters list|replay QUEUE``: the first form of these commands, by raw queue name."""
    parser = commands.add_parser("dead-letters", parents=parents, help="older form of dlq, by raw queue name")
    actions = parser.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", parents=parents, help="dead letters of QUEUE as JSON (nothing consumed)")
    ls.add_argument("queue")
    ls.add_argument("--limit", type=int, default=100)
    rp = actions.add_parser("replay", parents=parents, help="send QUEUE's dead letters back to their queue")
    rp.add_argument("queue")
    rp.add_argument("--id", dest="ids", action="append", default=[], help="only the event with this id")
    parser.set_defaults(run=run_legacy, needs_clusters=False)


# -- finding the queue -----------------------------------------------------------------------------


def split_reference(text: str) -> tuple[str, str]:
    namespace, slash, name = text.partition("/")
    if not slash or not namespace or not name or "/" in name:
        raise UsageError(f"{text!r}: expected NAMESPACE/SUBSCRIPTION")
    return namespace, name


def find_subscription(args: argparse.Namespace, clusters: Sequence[Cluster]) -> tuple[Cluster, Resource]:
    """The SyncSubscription ``args.subscription`` names, in the one cluster it exists in (or ``--cluster``)."""
    namespace, name = split_reference(args.subscription)
    found = []
    for cluster in clusters:
        resource = cluster.subscription(namespace, name)
        if resource is None:
            continue
        if args.cluster in (None, cluster.label, resource.broker_cluster):
            found.append((cluster, resource))
    where = ", ".join(c.label for c in clusters)
    if not found:
        scope = f" with --cluster {args.cluster}" if args.cluster else ""
        raise NothingMatched(f"SyncSubscription {namespace}/{name} not found in {where}{scope}")
    if len(found) > 1:
        raise UsageError(
            f"{namespace}/{name} exists in {', '.join(c.label for c, _ in found)}: pick one with --cluster"
        )
    return found[0]


def locate(args: argparse.Namespace, clusters: Sequence[Cluster]) -> Located:
    cluster, resource = find_subscription(args, clusters)
    namespace, name = resource.namespace, resource.name
    queue = resource.status.get("deadLetterQueue")
    if not isinstance(queue, str):
        raise NothingMatched(f"{cluster.label}: {namespace}/{name} has no status.deadLetterQueue yet (not reconciled)")
    endpoint = (
        _override(args)
        or cluster.service_endpoint(namespace, resource.service)
        or cluster.broker_endpoint(namespace, resource.broker)
    )
    return Located(cluster.label, f"{namespace}/{name}", DeadLetterQueue(endpoint, queue))


def _override(args: argparse.Namespace) -> BrokerEndpoint | None:
    return BrokerEndpoint(args.amqp_url, args.management_url) if args.amqp_url else None


# -- the actions -----------------------------------------------------------------------------------


def entry_row(letter: DeadLetter) -> dict[str, Any]:
    error = ": ".join(p for p in (_short_type(letter.exception_type), letter.exception_message) if p)
    return {**letter.to_json(), "error": error[: _ERROR_WIDTH - 1] + "…" if len(error) > _ERROR_WIDTH else error}


def _short_type(name: str | None) -> str | None:
    return name.rsplit(".", 1)[-1] if name else None


def render_list(letters: Sequence[DeadLetter], fmt: output.Format, colour: bool) -> str:
    if fmt != "table":
        return output.serialise([letter.to_json() for letter in letters], fmt)
    return output.table([entry_row(letter) for letter in letters], COLUMNS, colour=colour)


def shown(letter: DeadLetter, message: IncomingMessage) -> dict[str, Any]:
    try:
        body: Any = json.loads(message.body)
    except (UnicodeDecodeError, ValueError):
        body = message.body.decode(errors="replace")
    return {**letter.to_json(), "headers": plain(dict(message.headers)), "body": body}


def render_show(entry: dict[str, Any], fmt: output.Format) -> str:
    if fmt != "table":
        return output.serialise(entry, fmt)
    width = max(len(k) for k in entry)
    lines = [f"{k.ljust(width)}  {output.cell(v)}" for k, v in entry.items() if k not in ("headers", "body")]
    lines += ["headers:", json.dumps(entry["headers"], indent=2, default=str), "body:"]
    lines.append(json.dumps(entry["body"], indent=2) if not isinstance(entry["body"], str) else entry["body"])
    return "\n".join(lines)


def _look(located: Located) -> PassResult:
    with output.progress(f"reading {located.queue.queue}") as progress:
        return located.queue.look(progress)


def do_list(args: argparse.Namespace, located: Located) -> int:
    letters = _look(located).letters
    if not letters and args.fmt == "table":
        print(f"{located.queue.queue} is empty", file=sys.stderr)
        return OK
    output.emit(render_list(letters, args.fmt, output.colour_wanted(args.stdout)), args.stdout)
    return OK


def do_show(args: argparse.Namespace, located: Located) -> int:
    result = _look(located)
    matches = [shown(lt, m) for lt, m in zip(result.letters, result.messages, strict=True) if lt.message_id == args.id]
    if not matches:
        raise NothingMatched(f"no dead letter with id {args.id} in {located.queue.queue}")
    for entry in matches:  # a crash during an earlier pass can leave two identical copies
        output.emit(render_show(entry, args.fmt), args.stdout)
    return OK


def selector(args: argparse.Namespace) -> Any:
    if args.all and (args.ids or args.type or args.reason):
        raise UsageError("--all replays everything: do not combine it with --id, --type or --reason")
    if not (args.all or args.ids or args.type or args.reason):
        raise UsageError("say what to replay: --id ID, --type TYPE, --reason REASON or --all")
    ids = set(args.ids)

    def select(letter: DeadLetter) -> bool:
        return (
            (not ids or letter.message_id in ids)
            and args.type in (None, letter.type)
            and args.reason in (None, letter.reason)
        )

    return select


def replay_summary(result: PassResult, queue: str, ids: Sequence[str]) -> dict[str, Any]:
    seen = {lt.message_id for lt in result.letters if lt.message_id}
    return {
        "queue": queue,
        "replayed": [lt.message_id for lt in result.replayed],
        "to": sorted({lt.queue for lt in result.replayed if lt.queue}),
        "failed": [{"id": lt.message_id, "error": why} for lt, why in result.failed],
        "missing": sorted(set(ids) - seen),
    }


def report_replay(result: PassResult, queue: str, ids: Sequence[str], fmt: output.Format = "table") -> int:
    """What was replayed (text, or the summary as JSON/YAML); exit 1 unless all asked for was replayed."""
    summary = replay_summary(result, queue, ids)
    if fmt != "table":
        output.emit(output.serialise(summary, fmt))
    else:
        for failure in summary["failed"]:
            print(
                f"rabbitsync: not replayed: {failure['id']}: {failure['error']}; it stays in {queue}", file=sys.stderr
            )
        for event_id in summary["missing"]:
            print(f"rabbitsync: no dead letter with id {event_id} in {queue}", file=sys.stderr)
        where = f" to {', '.join(summary['to'])}" if summary["to"] else ""
        print(f"replayed {len(summary['replayed'])} dead letter(s) from {queue}{where}")
    return OK if summary["replayed"] and not summary["failed"] and not summary["missing"] else PROBLEMS


def do_replay(args: argparse.Namespace, located: Located) -> int:
    select = selector(args)
    with output.progress(f"replaying from {located.queue.queue}") as progress:
        result = located.queue.replay(select, progress)
    return report_replay(result, located.queue.queue, args.ids, args.fmt)


def confirmed(question: str) -> bool:
    if not sys.stdin.isatty():
        raise UsageError("refusing to purge without --yes: stdin is not a terminal to ask on")
    print(question, end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def do_purge(args: argparse.Namespace, located: Located) -> int:
    queue = located.queue
    depth = queue.depth()
    if depth == 0:
        print(f"{queue.queue} is empty: nothing to purge")
        return OK
    question = f"Delete {depth} dead letter(s) of {located.reference} in {located.cluster} ({queue.queue})? [y/N] "
    if not args.yes and not confirmed(question):
        print("not purged", file=sys.stderr)
        return PROBLEMS
    with output.progress(f"purging {queue.queue}") as progress:
        purged = queue.purge(depth, progress)
    print(f"purged {purged} dead letter(s) from {queue.queue}")
    return OK


_ACTIONS = {"list": do_list, "show": do_show, "replay": do_replay, "purge": do_purge}


def run(args: argparse.Namespace, clusters: Sequence[Cluster]) -> int:
    return _ACTIONS[args.action](args, locate(args, clusters))


def run_legacy(args: argparse.Namespace, _clusters: Sequence[Cluster]) -> int:
    # main() has refused a missing --amqp-url already, as a usage error.
    queue = DeadLetterQueue(BrokerEndpoint(args.amqp_url, args.management_url), args.queue)
    if args.action == "list":
        letters = queue.look().letters[: args.limit]
        output.emit(json.dumps([letter.to_json() for letter in letters], indent=2), args.stdout)
        return OK
    select = selector(argparse.Namespace(all=not args.ids, ids=args.ids, type=None, reason=None))
    return report_replay(queue.replay(select), args.queue, args.ids)
