"""Test helpers for services: what a view published, and handlers run on an event, with no broker.

``publish()`` writes the event to the outbox in the caller's transaction; a test needs no broker to
see it: :func:`captured_events` reads back the outbox rows written inside its block, decoded, so it
shows exactly what the relay would send (an event whose transaction rolled back is not there)::

    from rabbitsync.django.testing import captured_events, deliver, make_event

    with captured_events() as published:
        client.post("/api/restaurants/", {"name": "Pizza"}, content_type="application/json")
    created = published.one("RESTAURANT_CREATED")
    assert created.data["name"] == "Pizza"

:func:`deliver` hands an event to this service's handlers eagerly, the way the sidecar would after
receiving it: through the inbox, so every handler of its type runs in one transaction, a second
delivery of the same event is a ``DUPLICATE`` and the service's own events are skipped (``OWN``).
:func:`make_event` builds one as another service would have published it::

    deliver(make_event("RESTAURANT_CREATED", {"id": "...", "name": "Pizza"}, service="restaurant"))

Both work in Django's ``TestCase`` (one transaction per test) and ``TransactionTestCase``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import router
from pydantic import JsonValue

from rabbitsync.django.conf import get_settings
from rabbitsync.django.handlers import HandlerRegistry, registry
from rabbitsync.django.inbox import Outcome, apply
from rabbitsync.django.models import OutboxMessage
from rabbitsync.events import CloudEvent, ExtensionValue, Origin, decode, new_event

TEST_CLUSTER = "test"
"""The cluster :func:`make_event` publishes from by default: never the service's own, so the event
is applied rather than skipped as this service's own."""


@dataclass
class CapturedEvents:
    """The events published inside a :func:`captured_events` block, in publish order."""

    events: list[CloudEvent] = field(default_factory=list)

    def __iter__(self) -> Iterator[CloudEvent]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def of_type(self, event_type: str) -> list[CloudEvent]:
        return [event for event in self.events if event.type == event_type]

    def types(self) -> list[str]:
        return [event.type for event in self.events]

    def one(self, event_type: str, *, subject: str | None = None) -> CloudEvent:
        """The single event of ``event_type`` (and ``subject``, when given); AssertionError otherwise."""
        found = [e for e in self.of_type(event_type) if subject is None or e.subject == subject]
        # Raised, not asserted: a test run with python -O must still fail.
        if len(found) != 1:
            raise AssertionError(f"expected one {event_type} event{_about(subject)}, published: {self.types()}")
        return found[0]

    def assert_nothing_published(self) -> None:
        if self.events:
            raise AssertionError(f"expected no event, published: {self.types()}")


@contextlib.contextmanager
def captured_events(using: str | None = None) -> Iterator[CapturedEvents]:
    """Collect the events published (written to the outbox) inside the block; filled when it exits."""
    db = using or router.db_for_write(OutboxMessage)
    rows = OutboxMessage.objects.using(db)
    before = rows.order_by("-pk").values_list("pk", flat=True).first() or 0
    captured = CapturedEvents()
    yield captured
    bodies = rows.filter(pk__gt=before).order_by("pk").values_list("body", flat=True)
    captured.events.extend(decode(bytes(body)) for body in bodies)


def make_event(
    event_type: str,
    data: JsonValue = None,
    *,
    subject: str | None = None,
    version: int | None = None,
    service: str = "test-publisher",
    cluster: str = TEST_CLUSTER,
    namespace: str | None = None,
    extensions: dict[str, ExtensionValue] | None = None,
) -> CloudEvent:
    """An event as ``service`` in ``cluster`` (and this service's namespace, unless given) published it."""
    origin = Origin(cluster, namespace if namespace is not None else get_settings().namespace, service)
    return new_event(type=event_type, origin=origin, data=data, subject=subject, version=version, extensions=extensions)


def deliver(event: CloudEvent, *, handlers: HandlerRegistry = registry) -> Outcome:
    """Apply ``event`` now with this service's handlers, as its sidecar would; raises what a handler raises."""
    return apply(event, handlers=handlers)


def _about(subject: str | None) -> str:
    return "" if subject is None else f" about {subject!r}"
