"""``rabbitsync``: answers "where did my event go" across clusters, for people and for scripts.

  rabbitsync status                      every subscription and publication: Ready, depth, dead letters
  rabbitsync topology [--format svg ...] who publishes and consumes each event type; parity problems
  rabbitsync trace EVENT_ID              where one event went: published, applied, retried, dead-lettered
  rabbitsync dlq list NS/SUBSCRIPTION    dead letters: why each event failed (also show, replay, purge)
  rabbitsync unroutable list|replay      events no subscription took yet, kept by the exchange
  rabbitsync backfill NS/SUBSCRIPTION    ask the publishers to send the subscription their current state

Clusters: ``--kubeconfig`` and ``--context`` are repeatable, one of each per cluster (or one
kubeconfig with several contexts); without them, the current context of $KUBECONFIG.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from rabbitsync import __version__
from rabbitsync.cli import backfill, dlq, kube, output, status, topology, trace, unroutable
from rabbitsync.cli.failures import EXIT_CODES_HELP, explain


def _broker_options() -> argparse.ArgumentParser:
    """Options accepted before and after the subcommand.

    SUPPRESS as the default keeps the subcommand's parser from erasing a value given before it.
    """
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--amqp-url",
        default=argparse.SUPPRESS,
        help="broker URI instead of the SyncBroker's Secret (default: $RABBITSYNC_AMQP_URL)",
    )
    options.add_argument(
        "--management-url",
        default=argparse.SUPPRESS,
        help="management API URI instead of the Secret's (default: $RABBITSYNC_MANAGEMENT_URL)",
    )
    options.add_argument(
        "-o", "--output-format", dest="fmt", choices=output.FORMATS, default=argparse.SUPPRESS, help="default: table"
    )
    return options


def parser() -> argparse.ArgumentParser:
    shared = _broker_options()
    top = argparse.ArgumentParser(
        prog="rabbitsync",
        description=output.help_text(__doc__),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[shared],
    )
    top.add_argument("--version", action="version", version=f"rabbitsync {__version__}")
    top.add_argument("--kubeconfig", action="append", default=[], help="kubeconfig file (repeatable)")
    top.add_argument("--context", action="append", default=[], help="kubeconfig context (repeatable)")
    top.add_argument("--debug", action="store_true", help="log to stderr and show tracebacks")
    top.set_defaults(needs_clusters=True)
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (status, topology, trace, dlq, unroutable, backfill):
        sub = commands.add_parser(
            command.NAME,
            parents=[shared],
            help=command.HELP,
            description=output.help_text(command.__doc__),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.configure(sub, [shared])
    dlq.add_legacy_parser(commands, [shared])
    return top


def _quiet_logging(debug: bool) -> None:
    # Library loggers (pika's, the publisher's redial warnings) would otherwise reach stderr through
    # logging's last-resort handler and break the one-line rule.
    root = logging.getLogger()
    if debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    else:
        root.addHandler(logging.NullHandler())


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    args = cli.parse_args(argv)
    # Defaults here, not in the parsers: the shared option objects would carry them into the
    # subcommand's parser, which would then overwrite a value given before the subcommand.
    args.amqp_url = getattr(args, "amqp_url", None) or os.environ.get("RABBITSYNC_AMQP_URL")
    args.management_url = getattr(args, "management_url", None) or os.environ.get("RABBITSYNC_MANAGEMENT_URL")
    args.fmt = getattr(args, "fmt", None) or "table"
    if args.command == "dead-letters" and not args.amqp_url:
        cli.error("no broker: pass --amqp-url or set RABBITSYNC_AMQP_URL")
    args.stdout = sys.stdout
    _quiet_logging(args.debug)
    try:
        clusters: list[Any] = kube.connect(kube.targets(args.kubeconfig, args.context)) if args.needs_clusters else []
        return int(args.run(args, clusters))
    except (Exception, KeyboardInterrupt) as e:
        if args.debug:
            raise
        line, code = explain(e)
        print(f"rabbitsync: error: {line}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
