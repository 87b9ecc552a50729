"""Applying one received event exactly once: the inbox row and the handlers share a transaction.

Every handler of the event's type runs, in registration order, in that one transaction, with the
event's trace active (:mod:`rabbitsync.django.tracing`). If a handler raises, the inbox row is
rolled back with all their writes and the event can be retried. If it commits, a redelivery (the
ack was lost, the sidecar was killed, the relay sent twice) finds the row and does nothing. The
caller acks only after :func:`apply` returned.

:func:`apply_many` applies several events in one transaction, each in a savepoint of its own: a
handler that raises rolls back its own event only, the others commit together (the sidecar's batch
mode, one commit for up to N deliveries).

A database that cannot be reached is not the event's failure: :func:`probe` asks the database
whether it answers now, so the sidecar can pause until it does
(:mod:`rabbitsync.sidecar.outages`) and retry the same delivery without spending an attempt.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence

from django.db import IntegrityError, close_old_connections, connections, router, transaction

from rabbitsync.django import tracing
from rabbitsync.django.conf import Settings, get_settings
from rabbitsync.django.handlers import HandlerRegistry, registry
from rabbitsync.django.models import InboxMessage
from rabbitsync.events import CloudEvent, EventError


class Outcome(enum.Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    OWN = "own"
    """Published by this very service in this very cluster: it already has the effect."""


class NoHandler(EventError):
    """No handler is registered for the event's type: retrying cannot help."""


class Reject(EventError):
    """Raised by a handler for an event it can never apply (its data fails validation, say).

    The transaction rolls back and the event goes to the dead-letter queue at once with this message
    as the reason, instead of being retried ``maxAttempts`` times to the same end.
    """


def apply(event: CloudEvent, *, settings: Settings | None = None, handlers: HandlerRegistry = registry) -> Outcome:
    settings = settings or get_settings()
    # Same service in the *other* cluster is not "own": that is how two clusters converge.
    if event.origin == settings.origin:
        return Outcome.OWN
    fns = handlers.get(event.type)
    if not fns:
        raise NoHandler(f"no handler registered for event type {event.type!r}")
    db = router.db_for_write(InboxMessage)
    inbox = InboxMessage.objects.using(db)
    try:
        with transaction.atomic(using=db):
            # Inserted without a look first: a duplicate is rare, and get_or_create's look and the
            # savepoint around its insert were 30 % of the sidecar's handler thread (py-spy).
            inbox.create(event_id=event.id, type=event.type, source=event.source)
            with tracing.handling(event):
                for fn in fns:
                    fn(event)
    except IntegrityError:
        # Rolled back. The row there (a redelivery, another replica's copy committed meanwhile)
        # makes it a duplicate; without it, the constraint a handler broke is the handler's failure.
        if inbox.filter(event_id=event.id).exists():
            return Outcome.DUPLICATE
        raise
    return Outcome.APPLIED


def apply_many(
    events: Sequence[CloudEvent],
    *,
    settings: Settings | None = None,
    handlers: HandlerRegistry = registry,
    fatal: Callable[[BaseException], bool] = lambda _error: False,
    before_each: Callable[[CloudEvent], None] = lambda _event: None,
    apply_one: Callable[[CloudEvent], Outcome] | None = None,
) -> list[Outcome | BaseException]:
    """Apply ``events`` in one transaction, each in a savepoint: its outcome, or what its handler raised.

    A handler's failure rolls back its savepoint only; the next event goes on. The whole transaction
    is given up, and the error raised, when ``fatal(error)`` says so (a database that cannot be
    reached) or when the savepoint itself could not be rolled back (the connection is unusable).
    ``before_each`` runs before every event (the sidecar times each handler against its deadline);
    ``apply_one`` replaces :func:`apply` for each event (a test's stand-in).
    """
    settings = settings or get_settings()
    one = apply_one or (lambda event: apply(event, settings=settings, handlers=handlers))
    db = router.db_for_write(InboxMessage)
    results: list[Outcome | BaseException] = []
    with transaction.atomic(using=db):
        for event in events:
            before_each(event)
            try:
                # apply()'s own atomic block is a savepoint inside this transaction.
                results.append(one(event))
            except BaseException as error:  # the event's failure, reported as its outcome
                if fatal(error) or transaction.get_rollback(using=db):
                    raise
                results.append(error)
    return results


def probe() -> None:
    """One round trip to the database the inbox writes to; raises what the database driver raised."""
    close_old_connections()  # one left broken by the failure is replaced, not reused
    with connections[router.db_for_write(InboxMessage)].cursor() as cursor:
        cursor.execute("SELECT 1")
