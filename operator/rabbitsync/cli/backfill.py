"""``rabbitsync backfill NAMESPACE/SUBSCRIPTION``: ask the publishers to send a subscriber their state.

For the restored-database case, or a replica that started empty. For each event type the subscription
consumes, the publisher is a SyncPublication of that type in the same namespace: the one in the
subscription's own cluster if there is one (other than the subscribing service itself, which cannot
seed its own copy), else one in another cluster named on the command line. Each chosen publisher gets
one request with its types, in its request queue on the broker (``<its user>.@backfill-requests``),
where its sidecar takes it and streams its snapshot to the subscription's queue alone.

The broker is reached with the SyncBroker's Secret (``--amqp-url`` overrides). The request queue is
declared if missing, the same way every time, so the command works before a publisher's sidecar
first connects. Progress is on the subscriber's sidecar: ``rabbitsync_backfills_completed_total`` on
its metrics, and a log line with the counts; an incomplete run's end marker ends in its dead-letter
queue, saying how many events were applied.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Sequence
from typing import Any

from rabbitsync.cli import output
from rabbitsync.cli.dlq import find_subscription
from rabbitsync.cli.failures import OK, NothingMatched
from rabbitsync.cli.kube import Cluster
from rabbitsync.cli.output import Column
from rabbitsync.cli.resources import PUBLICATION, Resource
from rabbitsync.events.backfill import REQUEST_TYPE, BackfillRequest, encode
from rabbitsync.events.codec import MessageProperties
from rabbitsync.topology import naming
from rabbitsync.transport import BrokerEndpoint, ConfirmedPublisher, OutgoingMessage, Timeouts, declarations

NAME = "backfill"
HELP = "ask the publishers to send a subscription their current state"
CONNECTION_NAME = "rabbitsync-cli-backfill"
TIMEOUTS = Timeouts()
COLUMNS = (
    Column("REQUEST", "request"),
    Column("PUBLISHER", "publisher"),
    Column("CLUSTER", "cluster"),
    Column("TYPES", "types"),
    Column("QUEUE", "queue"),
)


def configure(parser: argparse.ArgumentParser, _parents: list[argparse.ArgumentParser]) -> None:
    parser.add_argument("subscription", metavar="NAMESPACE/SUBSCRIPTION")
    parser.add_argument("--cluster", help="the subscription's cluster, when it exists in several")
    parser.set_defaults(run=run)


def choose(subscription: Resource, publications: Sequence[Resource]) -> list[tuple[Resource, tuple[str, ...]]]:
    """Which publisher answers for which of the subscription's types: its own cluster's first.

    Raises :class:`NothingMatched` naming the types nobody publishes.
    """
    local = subscription.cluster
    candidates = [
        p
        for p in publications
        if p.namespace == subscription.namespace and not (p.cluster == local and p.service == subscription.service)
    ]
    # Own cluster first, then the others in a stable order: the same command asks the same publisher.
    candidates.sort(key=lambda p: (p.cluster != local, p.cluster, p.name))
    chosen: dict[tuple[str, str], tuple[Resource, list[str]]] = {}
    missing = []
    for event_type in subscription.events:
        publisher = next((p for p in candidates if event_type in p.events), None)
        if publisher is None:
            missing.append(event_type)
        else:
            chosen.setdefault((publisher.cluster, publisher.name), (publisher, []))[1].append(event_type)
    if missing:
        raise NothingMatched(f"no SyncPublication publishes {', '.join(missing)} in {subscription.namespace}")
    return [(publisher, tuple(types)) for publisher, types in chosen.values()]


def request_queue(publication: Resource) -> str:
    """The publisher's request queue, from the broker user its status names."""
    user = publication.status.get("user")
    if not isinstance(user, str) or not user.startswith(f"{naming.PREFIX}."):
        raise NothingMatched(f"{publication.cluster}: {publication.ref} has no status.user yet (not reconciled)")
    return user + naming.BACKFILL_REQUESTS_SUFFIX


def send(endpoint: BrokerEndpoint, queue: str, request: BackfillRequest) -> None:
    """Declare ``queue`` if missing and put ``request`` in it, confirmed."""
    with declarations(endpoint, name=CONNECTION_NAME, timeouts=TIMEOUTS) as broker:
        broker.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    publisher = ConfirmedPublisher(endpoint, name=CONNECTION_NAME, timeouts=TIMEOUTS).start()
    try:
        properties = MessageProperties(
            message_id=request.id, type="backfill-request", timestamp=int(time.time()), content_type=REQUEST_TYPE
        )
        message = OutgoingMessage("", queue, encode(request), properties, mandatory=True)
        publisher.publish([message], timeout=TIMEOUTS.operation_s)
    finally:
        publisher.close()


def run(args: argparse.Namespace, clusters: Sequence[Cluster]) -> int:
    cluster, subscription = find_subscription(args, clusters)
    queue = subscription.status.get("queue")
    if not isinstance(queue, str):
        raise NothingMatched(f"{cluster.label}: {subscription.ref} has no status.queue yet (not reconciled)")
    publications = [p for c in clusters for p in c.resources(PUBLICATION) or []]
    endpoint = (
        BrokerEndpoint(args.amqp_url, args.management_url)
        if args.amqp_url
        else cluster.broker_endpoint(subscription.namespace, subscription.broker)
    )
    rows: list[dict[str, Any]] = []
    for publisher, types in choose(subscription, publications):
        request = BackfillRequest(
            id=uuid.uuid4().hex,
            namespace=subscription.namespace,
            queue=queue,
            types=types,
            subscription=subscription.ref,
        )
        send(endpoint, request_queue(publisher), request)
        rows.append(
            {
                "request": request.id,
                "publisher": publisher.ref,
                "cluster": publisher.cluster,
                "types": ",".join(types),
                "queue": queue,
            }
        )
    text = output.table(rows, COLUMNS) if args.fmt == "table" else output.serialise(rows, args.fmt)
    output.emit(text, args.stdout)
    return OK
