"""A Django app that makes a service's event handlers fail a fraction of the time, for the fault suite.

The example services have no switch for failing handlers, and the suite changes no product code, so
the failure comes from outside: the sidecar of one service runs with ``chaos.flaky_settings``, which
adds this app last; its ``ready()`` wraps every registered handler so that a share of calls
(``CHAOS_HANDLER_FAILURE_RATE``) raise before doing anything. That is a handler's own failure, which
the sidecar must retry with backoff and apply exactly once in the end.
"""

from __future__ import annotations

import os
import random

from django.apps import AppConfig

from rabbitsync.django.handlers import Handler, HandlerRegistry, registry
from rabbitsync.events import CloudEvent

RATE_ENV = "CHAOS_HANDLER_FAILURE_RATE"


class InjectedFailure(RuntimeError):
    """Raised instead of running the handler: the fault suite's doing, never the event's."""


def flaky(fn: Handler, rate: float, rng: random.Random) -> Handler:
    def handle(event: CloudEvent) -> None:
        if rng.random() < rate:
            raise InjectedFailure(f"chaos: injected failure of {event.type} {event.id}")
        fn(event)

    handle.__qualname__ = f"flaky({getattr(fn, '__qualname__', repr(fn))})"
    return handle


def wrap_all(handlers: HandlerRegistry, rate: float, rng: random.Random) -> None:
    """Every registered handler of every type replaced by its flaky wrapper, in its place."""
    for event_type in sorted(handlers.types()):
        found = handlers.get(event_type)
        handlers.unregister(event_type)
        for fn in found:
            handlers.register(event_type, flaky(fn, rate, rng))


class FlakyHandlers(AppConfig):
    name = "chaos.flaky"
    label = "chaos_flaky"

    def ready(self) -> None:
        wrap_all(registry, float(os.environ.get(RATE_ENV, "0")), random.Random())
