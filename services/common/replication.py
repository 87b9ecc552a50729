"""Writes to a replicated entity, local or received, both through last-writer-wins.

A *local* write (an API call) takes a version above the row's current one, applies it with
``lww_upsert`` and publishes the full snapshot with that version, all in one transaction: the
event exists exactly when the change does. A *received* write (an event from another service, or
from this same service in the other cluster) goes through ``lww_upsert`` with the event's version
and source, so every copy keeps the same winner whatever order events arrive in.

Deletion is a write of ``deleted=True`` (a tombstone), never a row removal: a late update with a
lower version then loses instead of resurrecting the entity.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from django.db import transaction

from common.events import is_deletion
from rabbitsync.django import Reject, get_settings, lww_upsert, next_version, publish
from rabbitsync.django.models import VersionedModel
from rabbitsync.events import CloudEvent

M = TypeVar("M", bound=VersionedModel)


def write_local(model: type[M], entity_id: uuid.UUID, values: Mapping[str, Any], *, event_type: str) -> M:
    """Create, update or tombstone ``entity_id`` here and publish its new snapshot as ``event_type``."""
    source = get_settings().origin.source
    with transaction.atomic():
        current = model._default_manager.select_for_update().filter(pk=entity_id).first()
        version = next_version(current.sync_version if current is not None else None)
        won = lww_upsert(model, {"id": entity_id}, dict(values), version=version, source=source)
        # A version above the current row's always wins; losing would mean the clock went wrong.
        assert won, f"local write to {model.__name__} {entity_id} lost to a newer version"
        row = model._default_manager.get(pk=entity_id)
        publish(event_type, row.snapshot(), subject=str(entity_id), version=version)  # type: ignore[attr-defined]
    return row


def apply_received(model: type[VersionedModel], event: CloudEvent, fields: Iterable[str]) -> bool:
    """Apply a received snapshot event to the local copy; returns whether it won.

    Only ``fields`` are copied (a copy keeps what its service needs); a ``*_DELETED`` event also
    sets the tombstone. A payload without them can never be applied: it is rejected, which sends it
    to the dead-letter queue at once with the reason, instead of retrying it to the same end.
    """
    data = event.data
    if not isinstance(data, dict):
        raise Reject(f"{event.type} {event.id}: data must be a JSON object, got {type(data).__name__}")
    try:
        entity_id = uuid.UUID(str(event.subject or data["id"]))
        values = {name: data[name] for name in fields}
    except (KeyError, ValueError) as e:
        raise Reject(f"{event.type} {event.id}: missing or malformed {e}") from e
    values["deleted"] = is_deletion(event.type)
    return lww_upsert(model, {"id": entity_id}, values, version=event.version, source=event.source)
