"""Last-writer-wins upserts: every cluster applies the same writes and keeps the same winner.

The order is :func:`rabbitsync.events.ordering.wins`; a write that loses is ignored entirely
(no partial merge of fields).

Deletions are writes too: replicate them as a tombstone field (e.g. ``deleted=True``) through this
helper, or a late update would resurrect the row.

Versions are bounded. A version is microseconds since the epoch (:mod:`rabbitsync.events.clock`), so
one far ahead of the receiver's clock is either a clock gone wrong or a forgery; trusted, 2**63-1
would win every later write everywhere, and local writes would then overflow the column. A version
more than ``version_max_skew`` seconds ahead is refused with :class:`VersionOutOfBounds`, a
:class:`~rabbitsync.django.inbox.Reject`: the sidecar dead-letters it at once with the reason, and it
can be replayed once the clocks agree.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, router, transaction

from rabbitsync.django.conf import get_settings
from rabbitsync.django.inbox import Reject
from rabbitsync.django.models import VersionedModel
from rabbitsync.events import default_clock
from rabbitsync.events.ordering import wins


class VersionOutOfBounds(Reject):
    """A last-writer-wins version too far ahead of this clock (or negative) to be believed."""


def check_version(version: int, *, max_skew: float, now: float | None = None) -> None:
    """Refuse ``version`` unless it is between 0 and ``max_skew`` seconds past ``now`` (epoch seconds)."""
    bound = int(((time.time() if now is None else now) + max_skew) * 1_000_000)
    if not 0 <= version <= bound:
        raise VersionOutOfBounds(
            f"version {version} is outside [0, {bound}]: more than VERSION_MAX_SKEW={max_skew:g}s "
            "ahead of this clock, or negative"
        )


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
    ``version=event.version, source=event.source``. Raises :class:`VersionOutOfBounds` for a
    version too far ahead (see the module's docstring).
    """
    check_version(version, max_skew=get_settings().version_max_skew)
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
