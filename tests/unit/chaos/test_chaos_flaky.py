"""The flaky-handler wrapper fails the share of calls it is told to, and otherwise runs the handler."""

import random
from datetime import UTC, datetime

import pytest
from chaos.flaky import InjectedFailure, flaky, wrap_all

from rabbitsync.django.handlers import HandlerRegistry
from rabbitsync.events import CloudEvent

EVENT = CloudEvent(
    id="e1",
    type="RESTAURANT_CREATED",
    source="/clusters/east/namespaces/foodapp/services/restaurant",
    time=datetime.now(UTC),
    rabbitsyncversion=1,
)


def test_rate_zero_always_runs_the_handler_and_rate_one_never_does():
    seen = []
    flaky(seen.append, 0.0, random.Random(1))(EVENT)
    assert seen == [EVENT]
    with pytest.raises(InjectedFailure, match="RESTAURANT_CREATED e1"):
        flaky(seen.append, 1.0, random.Random(1))(EVENT)
    assert seen == [EVENT]


def test_a_share_of_calls_fail():
    handle = flaky(lambda _e: None, 0.2, random.Random(3))
    failures = 0
    for _ in range(2000):
        try:
            handle(EVENT)
        except InjectedFailure:
            failures += 1
    assert 300 < failures < 500


def test_wrapping_keeps_every_handler_of_a_type_in_its_order():
    seen: list[str] = []

    def projection(_event: CloudEvent) -> None:
        seen.append("projection")

    def cache(_event: CloudEvent) -> None:
        seen.append("cache")

    handlers = HandlerRegistry()
    handlers.register("RESTAURANT_CREATED", projection)
    handlers.register("RESTAURANT_CREATED", cache)
    wrap_all(handlers, 0.0, random.Random(1))
    for fn in handlers.get("RESTAURANT_CREATED"):
        fn(EVENT)
    assert seen == ["projection", "cache"]
    wrap_all(handlers, 1.0, random.Random(1))
    with pytest.raises(InjectedFailure):
        handlers.get("RESTAURANT_CREATED")[0](EVENT)
