"""Handlers of the test service, discovered by rabbitsync's app config.

``svc.flaky`` counts its attempts in a file (outside the database, whose writes roll back with the
failure) so the test can see each attempt and when it happened.
"""

import os
import time
from pathlib import Path

from rabbitsync.django import Reject, SnapshotEvent, handler, lww_upsert, publish, snapshot_source, tracing
from svcapp.models import Effect, Entity, Item, ItemCopy


@handler("svc.effect")
def effect(event):
    seconds = (event.data or {}).get("sleep", 0)
    if seconds:
        time.sleep(seconds)
    Effect.objects.create(event_id=event.id, subject=event.subject or "")


@handler("svc.flaky")
def flaky(event):
    log = Path(os.environ["SVC_ATTEMPTS_DIR"]) / event.id
    with log.open("a") as f:
        f.write(f"{time.time()}\n")
    attempts = len(log.read_text().splitlines())
    if attempts <= event.data["fail_times"]:
        raise RuntimeError(f"flaky failure {attempts}")
    Effect.objects.create(event_id=event.id, subject=event.subject or "")


@handler("svc.broken")
def broken(event):
    raise ValueError(f"broken on purpose: {event.subject}")


@handler("svc.conflicting")
def conflicting(event):
    """Breaks a unique constraint of its own: an IntegrityError that is the handler's, not a duplicate."""
    for _ in range(2):
        Entity.objects.create(key=f"conflicting-{event.id}", name="twice")


@handler("svc.invalid")
def invalid(event):
    Effect.objects.create(event_id=event.id, subject="written, then rolled back by the rejection")
    raise Reject(f"no price in {event.subject}")


@handler("svc.entity")
def entity(event):
    lww_upsert(
        Entity,
        {"key": event.subject},
        {"name": event.data["name"], "price": event.data["price"]},
        version=event.version,
        source=event.source,
    )


@handler("svc.fanout")
def fanout_first(event):
    Effect.objects.create(event_id=event.id, subject="first")


@handler("svc.fanout")
def fanout_second(event):
    Effect.objects.create(event_id=event.id, subject="second")
    if (event.data or {}).get("fail_second"):
        raise RuntimeError("the second handler failed: the first one's write rolls back too")


@handler("svc.traced")
def traced(event):
    """Records the trace active in the handler; publishes a follow-up that should join it."""
    Effect.objects.create(event_id=event.id, subject=tracing.current_traceparent() or "")
    if (event.data or {}).get("follow_up"):
        publish("svc.effect", {}, subject="follow-up")


_BASE_EXCEPTIONS = {"SystemExit": SystemExit, "KeyboardInterrupt": KeyboardInterrupt, "GeneratorExit": GeneratorExit}


@handler("svc.exit")
def exits(event):
    """Raises a BaseException that is not an Exception, as handler code calling sys.exit() would."""
    raise _BASE_EXCEPTIONS[event.data["raise"]](f"raised by the handler of {event.subject}")


ITEM_UPDATED, ITEM_DELETED = "svc.item.updated", "svc.item.deleted"


@snapshot_source(Item.objects.all(), types=(ITEM_UPDATED, ITEM_DELETED))
def item_snapshot(row):
    kind = ITEM_DELETED if row.deleted else ITEM_UPDATED
    return SnapshotEvent(kind, {"name": row.name}, subject=row.key, version=row.sync_version)


@handler(ITEM_UPDATED, ITEM_DELETED)
def item(event):
    values = {"name": event.data["name"], "deleted": event.type == ITEM_DELETED}
    lww_upsert(ItemCopy, {"key": event.subject}, values, version=event.version, source=event.source)


@handler("svc.seq")
def sequenced(event):
    """Records ``subject:seq`` in the order events are applied; the per-subject order test reads it back."""
    Effect.objects.create(event_id=event.id, subject=f"{event.subject}:{event.data['seq']:05d}")
