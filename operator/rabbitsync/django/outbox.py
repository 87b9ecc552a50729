"""``publish()``: the transactional half of the outbox pattern.

The event is a row in the caller's transaction, so it exists exactly when the business change it
describes does: a rollback takes both away. With an in-process relay, the row is inserted already
leased to it and the commit hook hands the row over, so nothing but the publish stands between the
commit and the broker (:mod:`rabbitsync.django.relay`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from django.db import router, transaction
from pydantic import JsonValue

from rabbitsync.django import leases, relay, tracing
from rabbitsync.django.conf import get_settings
from rabbitsync.django.models import OutboxMessage
from rabbitsync.events import CloudEvent, ExtensionValue, encode, new_event


def publish(
    type: str,
    data: JsonValue,
    *,
    subject: str | None = None,
    version: int | None = None,
    extensions: Mapping[str, ExtensionValue] | None = None,
    using: str | None = None,
) -> CloudEvent:
    """Record an event in the current transaction; it is sent after the commit, never before.

    ``version`` is the last-writer-wins key; pass the row's new ``sync_version`` when the event
    describes a replicated entity (see :func:`rabbitsync.django.lww.next_version`). ``extensions`` are
    CloudEvents extension attributes to carry; the active trace's ``traceparent`` is added unless
    given (:mod:`rabbitsync.django.tracing`).
    Raises :class:`rabbitsync.events.InvalidEvent` if ``type`` or ``data`` cannot go on the wire.
    """
    settings = get_settings()
    event = new_event(
        type=type,
        origin=settings.origin,
        data=data,
        subject=subject,
        version=version,
        extensions={**tracing.extensions(), **(extensions or {})},
    )
    db = using or router.db_for_write(OutboxMessage)
    if not (settings.relay_in_process and settings.amqp_url):
        OutboxMessage.objects.using(db).create(event_id=event.id, type=event.type, body=encode(event))
        return event
    local = relay.local_relay()
    row = OutboxMessage.objects.using(db).create(
        event_id=event.id, type=event.type, body=encode(event), **leases.born_leased(local.token, settings.relay_lease)
    )
    transaction.on_commit(partial(local.hand_over, row), using=db)
    return event
