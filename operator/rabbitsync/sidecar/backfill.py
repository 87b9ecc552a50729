"""The subscriber's side of a backfill: which snapshot deliveries to believe, and when a run is done.

A snapshot event passes the same trust checks as a live one (:mod:`rabbitsync.sidecar.trust`), plus
one: the routing key it came with, which the broker's topic permissions checked against the
publisher's declared types, must name the same type as its body and address this queue. Otherwise a
publisher allowed to send type A could slip a body of type B into a queue through its A key.

The end marker of a run (:class:`rabbitsync.events.backfill.BackfillEnd`) says how many events the
run sent. It is believed only from the service its ``source`` names, in our namespace. The run is
complete when the inbox holds that many of the run's event ids (they are ``<run>-<n>``): a count
that survives restarts and cannot be reached early. Until then the end marker goes the way of a
failed delivery: to a delay queue, and back behind the events still being retried; if the count is
never reached it ends in the dead-letter queue, where it says how far the run got.

Each time it meets an end marker the sidecar tells its operator how far the run got
(:func:`report`), before acking or retrying the marker: the operator's status says "complete" only
on the sidecar's word that the inbox holds every event of the run, and a sidecar killed between its
report and its ack reports again when the marker comes back.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from rabbitsync.conventions import backfill_key_type, broker_username
from rabbitsync.events import CloudEvent, EventError, Origin
from rabbitsync.events.backfill import (
    BACKFILL,
    BACKFILL_END,
    REPORT_TYPE,
    BackfillEnd,
    BackfillReport,
    decode_end,
    encode,
    run_prefix,
)
from rabbitsync.events.codec import MessageProperties
from rabbitsync.sidecar.trust import FOREIGN_NAMESPACE, FORGED_SOURCE, UNAUTHENTICATED, Untrusted
from rabbitsync.topology import naming
from rabbitsync.transport import OutgoingMessage

MISADDRESSED = "misaddressed"
"""Trust refusal: the routing key names another type than the body, or another queue."""


class Incomplete(EventError):
    """The end marker arrived before every event of its run was applied."""

    def __init__(self, message: str, applied: int) -> None:
        super().__init__(message)
        self.applied = applied


def is_end(headers: Mapping[str, Any]) -> bool:
    return BACKFILL_END in headers


def check_addressed(event: CloudEvent, routing_key: str | None, *, namespace: str, queue: str) -> None:
    """Raise :class:`Untrusted` if a delivery that came by a snapshot key is not what the key says."""
    if routing_key is None or ".@" not in routing_key:
        return  # a live key, or a retry coming back by the queue's name
    keyed = backfill_key_type(routing_key, namespace, queue)
    if keyed != event.type:
        raise Untrusted(MISADDRESSED, f"routing key {routing_key!r} does not carry type {event.type!r} to {queue}")


def verify_end(body: bytes, publisher: str | None, *, namespace: str) -> BackfillEnd:
    """The end marker in ``body``, if its publisher is the service it names, in our namespace."""
    end = decode_end(body)  # InvalidEvent: poison
    origin = _origin(end.source)
    if publisher is None:
        raise Untrusted(UNAUTHENTICATED, f"no user_id: nobody vouches that {end.source} ended run {end.run}")
    if publisher != broker_username(*origin):
        raise Untrusted(FORGED_SOURCE, f"end of run {end.run} published by {publisher!r}, not by {end.source}")
    if origin.namespace != namespace:
        raise Untrusted(FOREIGN_NAMESPACE, f"end of run {end.run} from namespace {origin.namespace!r}")
    return end


def applied(run: str) -> int:
    """How many events of ``run`` the inbox holds, that is how many this service applied."""
    # Imported here: the trust decisions above are used (and tested) before Django's apps are loaded.
    from rabbitsync.django.models import InboxMessage

    return InboxMessage.objects.filter(event_id__startswith=run_prefix(run)).count()


def confirm_complete(end: BackfillEnd) -> int:
    """The applied count when the run is complete; raises :class:`Incomplete` otherwise."""
    done = applied(end.run)
    if done < end.count:
        raise Incomplete(f"backfill run {end.run}: {done} of {end.count} events applied so far", done)
    return done


def _origin(source: str) -> Origin:
    # A CloudEvent's source grammar, parsed by the envelope itself.
    parts = source.strip("/").split("/")
    if len(parts) != 6 or parts[0::2] != ["clusters", "namespaces", "services"]:
        raise Untrusted(FORGED_SOURCE, f"end marker source {source!r} is not a service")
    return Origin(parts[1], parts[3], parts[5])


def report(queue: str, end: BackfillEnd, applied: int) -> OutgoingMessage:
    """The progress report on ``end``'s run for the operator of ``queue``'s subscription.

    Through the default exchange to the operator's status queue, not mandatory: a backfill asked for
    without the operator has no status queue, and the report has no reader. The operator declares
    its status queue before it asks, keeps it while the subscription exists, and asks again if it
    ever finds it gone, so a report dropped for want of it is not waited for forever.
    """
    message = BackfillReport(
        request=end.request, run=end.run, sent=end.count, applied=applied, complete=applied >= end.count
    )
    return OutgoingMessage(
        exchange="",
        routing_key=naming.backfill_status_queue(queue),
        body=encode(message),
        properties=MessageProperties(
            message_id=f"{end.run}-report-{applied}",
            type="backfill-report",
            timestamp=int(time.time()),
            content_type=REPORT_TYPE,
        ),
        headers={BACKFILL: end.run},
        mandatory=False,
    )
