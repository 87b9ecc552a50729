"""Issue 11 point 3: Ready objects' resyncs spread out, per-object state forgotten on deletion, enough workers."""

from __future__ import annotations

import logging
import random

import kopf
import pytest
from kopf._core.actions import loggers as kopf_loggers

from rabbitsync.operator import handlers
from rabbitsync.operator.gate import ObjectGate
from rabbitsync.operator.refresh import RefreshSchedule, spread
from rabbitsync.operator.settings import OperatorSettings

pytestmark = pytest.mark.unit


def test_spread_averages_the_interval_within_half_and_one_and_a_half() -> None:
    assert spread(600.0, rng=lambda: 0.0) == 300.0
    rng = random.Random(3)
    delays = [spread(600.0, rng.random) for _ in range(10_000)]
    assert all(300.0 <= d < 900.0 for d in delays)
    assert abs(sum(delays) / len(delays) - 600.0) < 10.0, "the same average rate as a fixed interval"


def test_a_never_refreshed_object_is_due_a_refreshed_one_waits() -> None:
    schedule = RefreshSchedule(600.0, rng=lambda: 0.5)
    assert schedule.due("a", now=0.0)
    schedule.done("a", now=0.0)
    assert not schedule.due("a", now=599.0) and schedule.due("a", now=600.0)


def test_objects_refreshed_together_come_back_in_many_timer_ticks() -> None:
    """1,000 subscriptions created at once: their next refreshes fall in many 30 s ticks, not one."""
    schedule = RefreshSchedule(600.0, rng=random.Random(5).random)
    for i in range(1000):
        schedule.done(f"uid-{i}", now=0.0)
    per_tick = [sum(schedule.due(f"uid-{i}", t) for i in range(1000)) for t in range(0, 960, 30)]
    newly_due = [after - before for before, after in zip([0, *per_tick], per_tick, strict=False)]
    assert per_tick[-1] == 1000 and max(newly_due) < 1000 / 10, newly_due


def test_deleted_objects_are_forgotten() -> None:
    schedule, gate = RefreshSchedule(600.0), ObjectGate()
    schedule.done("gone", now=0.0)
    with gate.change("gone", 1):
        pass
    assert (len(schedule), len(gate)) == (1, 1)
    registry = kopf.OperatorRegistry()
    handlers.forget_on_deletion(registry, "syncsubscriptions", gate.forget, schedule.forget)
    [handler] = registry._watching.get_all_handlers()
    assert handler.when is not None
    assert not handler.when(event={"type": "MODIFIED"}, uid="gone"), "only a deletion forgets"
    assert handler.when(event={"type": "DELETED"}, uid="gone")
    handler.fn(event={"type": "DELETED"}, uid="gone")
    assert (len(schedule), len(gate)) == (0, 0)


def test_every_reconciled_kind_forgets_its_deleted_objects() -> None:
    registry = kopf.OperatorRegistry()
    handlers.register(registry, OperatorSettings(cluster="east"))
    timers = {h.selector.any_name for h in registry._spawning.get_all_handlers() if h.id == "resync"}
    forgetting = {h.selector.any_name for h in registry._watching.get_all_handlers() if h.id == "forget"}
    assert timers == forgetting == {"syncsubscriptions", "syncpublications", "syncbrokers", "clustersyncbrokers"}


@pytest.mark.parametrize(("connections", "workers"), [(1, 16), (8, 16), (12, 24)])
def test_kopf_keeps_workers_beside_those_waiting_for_a_broker_connection(connections: int, workers: int) -> None:
    """Synchronous handlers each hold a kopf worker; kopf's default (cores + 4) is 6 on the 2-core bench."""
    kopf_settings = kopf.OperatorSettings()
    handlers.configure(kopf_settings, OperatorSettings(cluster="east", broker_connections=connections))
    assert kopf_settings.execution.max_workers == workers


def test_kopf_waits_longer_than_its_default_for_its_own_patches_to_come_back() -> None:
    """At 1,000 subscriptions the watch stream lagged more than kopf's 5 s: every object's create
    handler ran twice, the second time on a body without kopf's record of the first."""
    kopf_settings = kopf.OperatorSettings()
    default = kopf_settings.persistence.consistency_timeout
    handlers.configure(kopf_settings, OperatorSettings(cluster="east"))
    assert kopf_settings.persistence.consistency_timeout == handlers.CONSISTENCY_TIMEOUT_SECONDS > default


def test_kopfs_line_for_every_successful_resync_tick_is_dropped_and_its_failures_are_kept() -> None:
    """kopf logs "Timer 'resync' succeeded." per object per tick: 33 lines a second at 1,000 subscriptions."""
    registry = kopf.OperatorRegistry()
    handlers.register(registry, OperatorSettings(cluster="east"))
    [timer, *_] = [h for h in registry._spawning.get_all_handlers() if h.id == handlers.RESYNC]
    body = kopf.Body({"apiVersion": "rabbitsync.io/v1alpha1", "kind": "SyncSubscription", "metadata": {"name": "s"}})
    # kopf's own per-object logger, as its handler execution uses it.
    object_logger = kopf_loggers.ObjectLogger(body=body, settings=kopf.OperatorSettings())
    seen: list[str] = []
    recorder = logging.Handler()
    recorder.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    quiet, level = handlers.QuietResync(), kopf_loggers.logger.level
    kopf_loggers.logger.setLevel(logging.INFO)  # as kopf.configure() sets it on the root logger
    kopf_loggers.logger.addHandler(recorder)
    kopf_loggers.logger.addFilter(quiet)
    try:
        object_logger.info(f"{timer} succeeded.")  # as kopf._core.actions.execution words it
        object_logger.error(f"{timer} failed with an exception and will try again in 30 seconds: boom")
    finally:
        kopf_loggers.logger.removeFilter(quiet)
        kopf_loggers.logger.removeHandler(recorder)
        kopf_loggers.logger.setLevel(level)
    assert seen == ["Timer 'resync' failed with an exception and will try again in 30 seconds: boom"]
