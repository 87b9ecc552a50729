"""``rabbitsync``: the operator's command line for people debugging a sync.

``rabbitsync dead-letters list QUEUE`` shows why events failed (type, reason, exception, attempts);
``rabbitsync dead-letters replay QUEUE [--id ID]`` sends them back to their subscription once the
cause is fixed. QUEUE is a subscription's ``status.deadLetterQueue``; the broker URI comes from
``--amqp-url`` or ``RABBITSYNC_AMQP_URL``. Replay with the consuming service's own credentials (the
``RABBITSYNC_AMQP_URL`` of its sidecar): the sidecar believes the original publisher of a replayed
event only from its own user, and refuses one replayed by anyone else as ``forged-source``.
"""

from __future__ import annotations

import argparse
import os
import sys

from rabbitsync.sidecar.deadletters import dumps, list_dead_letters, replay
from rabbitsync.transport import BrokerEndpoint, BrokerError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rabbitsync", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--amqp-url", default=os.environ.get("RABBITSYNC_AMQP_URL"), help="default: $RABBITSYNC_AMQP_URL"
    )
    commands = parser.add_subparsers(dest="group", required=True)
    dl = commands.add_parser("dead-letters", help="list or replay a subscription's dead letters")
    actions = dl.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="show dead letters without removing them")
    ls.add_argument("queue")
    ls.add_argument("--limit", type=int, default=100)
    rp = actions.add_parser("replay", help="send dead letters back to their subscription queue")
    rp.add_argument("queue")
    rp.add_argument("--id", help="only the event with this id")
    args = parser.parse_args(argv)
    if not args.amqp_url:
        parser.error("no broker: pass --amqp-url or set RABBITSYNC_AMQP_URL")
    try:
        endpoint = BrokerEndpoint(args.amqp_url)
        if args.action == "list":
            print(dumps(list_dead_letters(endpoint, args.queue, args.limit)))
        else:
            print(f"replayed {replay(endpoint, args.queue, args.id)} dead letter(s) from {args.queue}")
    except BrokerError as e:
        print(f"rabbitsync: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
