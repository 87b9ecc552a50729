"""Which function handles which event type: a registry filled by a decorator.

Services put their handlers in a ``rabbitsync_handlers.py`` module of any installed app (the name
is the ``HANDLER_MODULES`` setting); the app's ``ready()`` imports those modules the way the admin
discovers ``admin.py``::

    from rabbitsync.django import handler

    @handler("restaurant.created")
    def restaurant_created(event):
        ...

A type may have several handlers (in several apps): they run in registration order, all inside the
transaction that records the event in the inbox. A handler must not catch and swallow database
errors, and should keep non-database side effects idempotent.
"""

from __future__ import annotations

from collections.abc import Callable

from rabbitsync.events import CloudEvent

Handler = Callable[[CloudEvent], None]


class HandlerRegistry:
    """Event type -> its handlers, in registration order.

    Several handlers of one type (a projection here, a cache invalidation there) all run, in that
    order, inside the one transaction that records the event in the inbox: all of them apply or none
    does, and a redelivery runs none of them again.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, tuple[Handler, ...]] = {}

    def register(self, event_type: str, fn: Handler) -> Handler:
        by_name = {_qualname(h): h for h in self._handlers.get(event_type, ())}
        # The same function again (a module imported twice) keeps its place and runs once.
        by_name[_qualname(fn)] = fn
        self._handlers[event_type] = tuple(by_name.values())
        return fn

    def unregister(self, event_type: str, fn: Handler | None = None) -> None:
        """Forget ``fn`` for ``event_type``, or every handler of it."""
        kept = tuple(h for h in self._handlers.pop(event_type, ()) if fn is not None and h is not fn)
        if kept:
            self._handlers[event_type] = kept

    def get(self, event_type: str) -> tuple[Handler, ...]:
        """The handlers of ``event_type`` in registration order; empty when it has none."""
        return self._handlers.get(event_type, ())

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
