"""Serving a backfill request: stream the snapshot sources' rows to one queue, then the end marker.

Each page of rows becomes a batch of events published pipelined and confirmed before the next page
is read, so at most one page is in memory and the broker holds every event of a page before the
service reads further. The events go through the events exchange with a routing key that only the
requesting queue is bound to (:func:`rabbitsync.conventions.backfill_routing_key`), so no other
subscriber receives them, and the broker's topic permissions still allow only the declared types.

The end marker is published last, on the same channel: a queue delivers in publish order, so the
subscriber meets it after every event of the run (retries aside, see
:mod:`rabbitsync.sidecar.backfill`). A run interrupted anywhere publishes no end marker; serving the
request again starts a new run (:func:`rabbitsync.events.backfill.new_run`), which is safe because
replicas apply snapshots with last-writer-wins: a row seen twice keeps the newer version.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from rabbitsync.conventions import backfill_routing_key
from rabbitsync.django.conf import Settings
from rabbitsync.django.snapshots import SnapshotRegistry, SnapshotSource, pages, snapshots
from rabbitsync.events import CloudEvent, InvalidEvent, encode, message_properties, new_event
from rabbitsync.events.backfill import (
    BACKFILL,
    BACKFILL_END,
    END_TYPE,
    BackfillEnd,
    BackfillRequest,
    new_run,
    snapshot_id,
)
from rabbitsync.events.backfill import encode as encode_control
from rabbitsync.events.codec import MessageProperties
from rabbitsync.transport import ConfirmedPublisher, OutgoingMessage

log = logging.getLogger(__name__)


class NothingToServe(Exception):
    """This service has no snapshot source for any of the requested types."""


class Cancelled(Exception):
    """The caller asked to stop between two pages; no end marker was sent."""


def serve(
    request: BackfillRequest,
    publisher: ConfirmedPublisher,
    settings: Settings,
    *,
    registry: SnapshotRegistry = snapshots,
    cancelled: Callable[[], bool] = lambda: False,
) -> BackfillEnd:
    """Send one run of ``request``; its end marker, once the broker confirmed everything.

    ``cancelled`` is asked before each page: a stopping process leaves the run unfinished (the
    request, unacknowledged, goes to another replica or to the next start).
    """
    sources = registry.covering(request.types)
    if not sources:
        raise NothingToServe(f"no snapshot source for any of {', '.join(request.types)}")
    run = new_run(request)
    served = tuple(t for t in request.types if any(t in s.types for s in sources))
    started = time.monotonic()
    count = 0
    for source in sources:
        for rows in pages(source.queryset, settings.relay_batch_size):
            if cancelled():
                raise Cancelled(f"run {run} stopped after {count} events")
            events = list(_events(source, rows, served, settings, run, first=count + 1))
            publisher.publish([_message(e, request, run, settings) for e in events], timeout=settings.confirm_timeout)
            count += len(events)
    end = BackfillEnd(request=request.id, run=run, source=settings.origin.source, types=served, count=count)
    publisher.publish([_end_message(end, request, settings)], timeout=settings.confirm_timeout)
    log.info(
        "backfill served",
        extra={"request": request.id, "run": run, "events": count, "seconds": round(time.monotonic() - started, 2)},
    )
    return end


def _events(
    source: SnapshotSource, rows: Iterable[object], served: tuple[str, ...], settings: Settings, run: str, first: int
) -> Iterable[CloudEvent]:
    n = first
    for row in rows:
        item = source.describe(row)
        if item.type not in source.types:
            raise InvalidEvent(f"snapshot source {source.name} described a row as {item.type!r}, not one of its types")
        if item.type not in served:
            continue
        event = new_event(
            type=item.type, origin=settings.origin, data=item.data, subject=item.subject, version=item.version
        )
        # The id is the run's (events.backfill explains why); everything else is what a live write sends.
        yield event.model_copy(update={"id": snapshot_id(run, n), "time": datetime.now(UTC)})
        n += 1


def _message(event: CloudEvent, request: BackfillRequest, run: str, settings: Settings) -> OutgoingMessage:
    return OutgoingMessage(
        exchange=settings.exchange,
        routing_key=backfill_routing_key(settings.namespace, event.type, request.queue),
        body=encode(event),
        properties=message_properties(event),
        headers={BACKFILL: run},
        # Only one queue is bound to this key: if it is gone, the run fails instead of vanishing.
        mandatory=True,
    )


def _end_message(end: BackfillEnd, request: BackfillRequest, settings: Settings) -> OutgoingMessage:
    return OutgoingMessage(
        exchange=settings.exchange,
        # Routed like a snapshot event of a served type: the key the publisher may write and the queue reads.
        routing_key=backfill_routing_key(settings.namespace, end.types[0], request.queue),
        body=encode_control(end),
        properties=MessageProperties(
            message_id=f"{end.run}-end", type=end.types[0], timestamp=int(time.time()), content_type=END_TYPE
        ),
        headers={BACKFILL: end.run, BACKFILL_END: "true"},
        mandatory=True,
    )
