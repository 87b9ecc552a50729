"""Which function handles which event type: a registry filled by a decorator.

Services put their handlers in a ``rabbitsync_handlers.py`` module of any installed app (the name
is the ``HANDLER_MODULES`` setting); the app's ``ready()`` imports those modules the way the admin
discovers ``admin.py``::

    from rabbitsync.django import handler

    @handler("restaurant.created")
    def restaurant_created(event):
        ...

A handler runs inside the transaction that records the event in the inbox; it must not catch and
swallow database errors, and should keep non-database side effects idempotent.
"""

from __future__ import annotations

from collections.abc import Callable

from rabbitsync.events import CloudEvent

Handler = Callable[[CloudEvent], None]


class DuplicateHandler(Exception):
    """Two handlers were registered for one event type."""


class HandlerRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, event_type: str, fn: Handler) -> Handler:
        existing = self._handlers.get(event_type)
        # Re-registering the same function (a module imported twice) is harmless; another one is a bug.
        if existing is not None and _qualname(existing) != _qualname(fn):
            raise DuplicateHandler(f"{event_type}: {_qualname(existing)} and {_qualname(fn)}")
        self._handlers[event_type] = fn
        return fn

    def unregister(self, event_type: str) -> None:
        self._handlers.pop(event_type, None)

    def get(self, event_type: str) -> Handler | None:
        return self._handlers.get(event_type)

    def types(self) -> frozenset[str]:
        return frozenset(self._handlers)


registry = HandlerRegistry()


def handler(*event_types: str) -> Callable[[Handler], Handler]:
    """Register the decorated function for one or more event types."""
    if not event_types:
        raise TypeError("handler() needs at least one event type")

    def decorate(fn: Handler) -> Handler:
        for event_type in event_types:
            registry.register(event_type, fn)
        return fn

    return decorate


def autodiscover() -> None:
    from django.utils.module_loading import autodiscover_modules

    from rabbitsync.django.conf import get_settings

    autodiscover_modules(*get_settings().handler_modules)


def _qualname(fn: Handler) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
