"""Snapshot sources: how a publishing service lists its current state as the events its writes produce.

A backfill (:mod:`rabbitsync.django.backfill`) replays a service's entities to one subscriber. The
library cannot guess which rows are entities and which event each row is, so the service registers,
per set of event types, a queryset and a function turning one row into the event a live write of it
would publish: same type, same data, and the row's current ``sync_version``. A deleted entity is a
tombstone row, and its event is the ``*_DELETED`` one, so replicas learn about deletions too::

    from rabbitsync.django import SnapshotEvent, snapshot_source

    @snapshot_source(Restaurant.objects.all(), types=RESTAURANT_EVENTS)
    def restaurant_snapshot(row: Restaurant) -> SnapshotEvent:
        kind = RESTAURANT_DELETED if row.deleted else RESTAURANT_UPDATED
        return SnapshotEvent(kind, row.snapshot(), subject=str(row.pk), version=row.sync_version)

Put it next to the handlers, in ``rabbitsync_handlers.py``: that module is imported at start.

Rows are read in pages by keyset (``pk > last``, ordered by ``pk``), each page its own short read: the
table is never in memory and no lock or transaction is held across pages, so the service's writes
never wait for a snapshot. A snapshot read this way is not a point-in-time copy, and need not be: a
row changed while it runs reaches the subscriber as a live event too (its queue is bound before the
request is sent), and last-writer-wins keeps the newer of the two whatever order they arrive in.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import models
from pydantic import JsonValue

M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True)
class SnapshotEvent:
    """What a row is on the wire: the event a live write of it publishes, with its current version."""

    type: str
    data: JsonValue
    subject: str | None
    version: int


Describe = Callable[[Any], SnapshotEvent]


@dataclass(frozen=True)
class SnapshotSource:
    """One registered source: ``queryset``'s rows, each described as one event of ``types``."""

    types: frozenset[str]
    queryset: models.QuerySet[Any]
    describe: Describe
    name: str


class DuplicateSnapshotSource(Exception):
    """Two sources were registered for one event type: a backfill would send both."""


class SnapshotRegistry:
    def __init__(self) -> None:
        self._sources: dict[str, SnapshotSource] = {}

    def register(self, source: SnapshotSource) -> None:
        for event_type in source.types:
            existing = self._sources.get(event_type)
            # The same function registered again (a module imported twice) is harmless.
            if existing is not None and existing.name != source.name:
                raise DuplicateSnapshotSource(f"{event_type}: {existing.name} and {source.name}")
        for event_type in source.types:
            self._sources[event_type] = source

    def unregister(self, event_type: str) -> None:
        self._sources.pop(event_type, None)

    def covering(self, types: Collection[str]) -> list[SnapshotSource]:
        """The sources of any of ``types``, each once, in the order of ``types``."""
        found: dict[str, SnapshotSource] = {}
        for event_type in types:
            source = self._sources.get(event_type)
            if source is not None:
                found.setdefault(source.name, source)
        return list(found.values())

    def types(self) -> frozenset[str]:
        return frozenset(self._sources)


snapshots = SnapshotRegistry()


def snapshot_source(queryset: models.QuerySet[M], *, types: Collection[str]) -> Callable[[Describe], Describe]:
    """Register the decorated function as the snapshot source of ``types``, reading ``queryset``."""
    if not types:
        raise TypeError("snapshot_source() needs at least one event type")

    def decorate(fn: Describe) -> Describe:
        name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
        snapshots.register(SnapshotSource(frozenset(types), queryset, fn, name))
        return fn

    return decorate


def pages(queryset: models.QuerySet[M], size: int) -> Iterator[list[M]]:
    """``queryset``'s rows in primary-key order, ``size`` at a time, each page one short query."""
    ordered = queryset.order_by("pk")
    last: Any = None
    while True:
        page = list((ordered if last is None else ordered.filter(pk__gt=last))[:size])
        if page:
            yield page
        if len(page) < size:
            return
        last = page[-1].pk
