"""Last-writer-wins upserts: every cluster applies the same writes and keeps the same winner.

The order is :func:`rabbitsync.events.ordering.wins`; a write that loses is ignored entirely
(no partial merge of fields).

Deletions are writes too: replicate them as a tombstone field (e.g. ``deleted=True``) through this
helper, or a late update would resurrect the row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, router, transaction

from rabbitsync.django.models import VersionedModel
from rabbitsync.events import default_clock
from rabbitsync.events.ordering import wins


def next_version(current: int | None = None) -> int:
    """Version for a local write to a row whose version is ``current``: newer than it, and than now."""
    return default_clock.tick(observed=current)


def lww_upsert(
    model: type[VersionedModel],
    lookup: Mapping[str, Any],
    values: Mapping[str, Any],
    *,
    version: int,
    source: str,
) -> bool:
    """Create or update the row matching ``lookup`` unless it already holds a newer write.

    Returns whether the write won. Call it inside the handler's transaction, typically with
    ``version=event.version, source=event.source``.
    """
    db = router.db_for_write(model)
    manager = model._default_manager.db_manager(db)
    with transaction.atomic(using=db):
        current = manager.select_for_update().filter(**lookup).first()
        if current is None:
            try:
                with transaction.atomic(using=db):
                    manager.create(**lookup, **values, sync_version=version, sync_source=source)
                return True
            except IntegrityError:
                # Another transaction inserted it first: compare against that write instead.
                current = manager.select_for_update().get(**lookup)
        if not wins(version, source, current.sync_version, current.sync_source):
            return False
        for name, value in values.items():
            setattr(current, name, value)
        current.sync_version = version
        current.sync_source = source
        current.save(using=db, update_fields=[*values, "sync_version", "sync_source"])
        return True
