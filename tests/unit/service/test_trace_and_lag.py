"""The sidecar's and the relay's trace records (best effort, bounded, never in the way) and the end-to-end lag."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from rabbitsync.django import tracelog
from rabbitsync.events import Origin, new_event, trace
from rabbitsync.sidecar import outcomes, routing
from rabbitsync.sidecar.metrics import Metrics
from rabbitsync.topology import sidecar_contract as contract
from rabbitsync.transport import BrokerError, BrokerUnreachable, IncomingMessage, OutgoingMessage, PublishRejected

pytestmark = pytest.mark.unit

WRITER = tracelog.Writer("east", "shop", "menu", "menu-7d9-x", "rabbitsync.events")


class Handle:
    def __init__(self, count: int) -> None:
        self.settled = False
        self.outcome: list[BrokerError | None] = [None] * count

    def done(self) -> bool:
        return self.settled

    def outcomes(self) -> list[BrokerError | None]:
        return self.outcome


class FakePublisher:
    """Takes batches while ``up``; each stays in flight until ``settle`` confirms it (or ``refuse``)."""

    def __init__(self) -> None:
        self.up = True
        self.batches: list[list[OutgoingMessage]] = []
        self.handles: list[Handle] = []

    def ready(self) -> bool:
        return self.up

    def submit(self, messages: list[OutgoingMessage]) -> Handle:
        self.batches.append(list(messages))
        self.handles.append(Handle(len(messages)))
        return self.handles[-1]

    def settle(self) -> None:
        for handle in self.handles:
            handle.settled = True

    def refuse(self) -> None:
        """What a missing trace exchange does: the channel closes and fails the batch in flight."""
        handle = self.handles[-1]
        handle.outcome = [PublishRejected("channel closed by the broker: (404) NOT_FOUND")] * len(handle.outcome)
        handle.settled = True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_records_go_in_batches_to_the_trace_exchange_one_batch_in_flight_at_a_time() -> None:
    publisher = FakePublisher()
    log = tracelog.TraceLog(WRITER, publisher)  # type: ignore[arg-type]
    for n in range(tracelog.BATCH + 1):
        log.record(trace.APPLIED, f"ev-{n}", type="T", queue="q", event_time=datetime(2026, 11, 30, tzinfo=UTC))
    assert log.flush() and not log.flush()  # the second waits for the first batch's confirms
    publisher.settle()
    assert log.flush()
    first, second = publisher.batches
    assert (len(first), len(second)) == (tracelog.BATCH, 1)
    message = first[0]
    assert (message.exchange, message.routing_key, message.mandatory) == ("rabbitsync.events.trace", "record", False)
    assert message.properties.message_id == "ev-0" and message.properties.delivery_mode == 1
    body = json.loads(message.body)
    assert body["pod"] == "menu-7d9-x" and body["event_time"] == "2026-11-30T00:00:00+00:00"
    assert (body["cluster"], body["namespace"], body["service"], body["kind"]) == ("east", "shop", "menu", "applied")


def test_a_stream_that_is_away_keeps_records_bounded_and_drops_the_oldest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracelog, "CAPACITY", 3)
    publisher = FakePublisher()
    publisher.up = False
    log = tracelog.TraceLog(WRITER, publisher)  # type: ignore[arg-type]
    for n in range(5):
        log.record(trace.APPLIED, f"ev-{n}")
    assert not log.flush() and log.dropped == 2
    publisher.up = True
    assert log.flush()
    assert [m.properties.message_id for m in publisher.batches[0]] == ["ev-2", "ev-3", "ev-4"]


def test_after_a_refused_batch_the_log_pauses_longer_each_time_and_a_taken_batch_ends_the_pauses() -> None:
    # A missing trace exchange refuses every batch by closing the channel: without pauses every flush
    # (5 a second) would redial the broker, from every process of every service.
    publisher, clock = FakePublisher(), Clock()
    log = tracelog.TraceLog(WRITER, publisher, clock=clock)  # type: ignore[arg-type]

    def paused_for(at_least: float, at_most: float) -> None:
        """The next batch waits at least ``at_least`` seconds and at most ``at_most`` (jitter), then goes."""
        log.record(trace.APPLIED, f"ev-{len(publisher.batches)}")
        clock.now += at_least - 0.01
        assert not log.flush(), f"sent again within {at_least}s"
        clock.now += at_most - at_least + 0.01
        assert log.flush(), f"still paused after {at_most}s"

    log.record(trace.APPLIED, "ev-first")
    assert log.flush()
    for pause in (1, 2, 4):
        publisher.refuse()
        assert not log.flush()  # the refusal noticed (the log's thread flushes every 200 ms)
        paused_for(pause * tracelog.PAUSE_INITIAL / 2, pause * tracelog.PAUSE_INITIAL)
    publisher.settle()  # taken: no pause, and the next refusal pauses briefly again
    log.record(trace.APPLIED, "ev-taken")
    assert log.flush()
    publisher.refuse()
    assert not log.flush()
    paused_for(tracelog.PAUSE_INITIAL / 2, tracelog.PAUSE_INITIAL)
    assert log.dropped == 4, "refused records are lost, and counted"
    assert len(publisher.batches) == 6


def test_the_pause_is_capped() -> None:
    publisher, clock = FakePublisher(), Clock()
    log = tracelog.TraceLog(WRITER, publisher, clock=clock)  # type: ignore[arg-type]
    for _ in range(12):  # 2**12 seconds uncapped
        log.record(trace.APPLIED, "ev")
        clock.now += tracelog.PAUSE_CAP
        assert log.flush()
        publisher.refuse()
        assert not log.flush()
    log.record(trace.APPLIED, "ev")
    clock.now += tracelog.PAUSE_CAP
    assert log.flush()


def test_recording_never_raises_and_a_log_without_publisher_keeps_nothing() -> None:
    class Broken(FakePublisher):
        def submit(self, messages: list[OutgoingMessage]) -> Handle:
            raise BrokerUnreachable("gone")

    log = tracelog.TraceLog(WRITER, Broken())  # type: ignore[arg-type]
    log.record(trace.APPLIED, "ev", attempt=object())  # not JSON: fails when sent, not here
    log.record(trace.APPLIED, "ev", no_such_field=1)  # a programming error costs a record, not a delivery
    assert log.dropped == 1
    assert not log._flush_safely()
    assert tracelog.local().flush() is False  # no started log in this process: nothing kept
    tracelog.local().record(trace.APPLIED, "ev")


def spec() -> contract.ConsumerSpec:
    return contract.build(
        cluster="east",
        namespace="shop",
        subscription="menu",
        events=["MENU_ITEM_CREATED"],
        max_attempts=2,
        initial_backoff_ms=100,
        max_backoff_ms=200,
        dead_letter=True,
        prefetch=10,
    )


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None, dict[str, object]]]:
    calls: list[tuple[str, str | None, dict[str, object]]] = []

    class Recorder:
        def record(self, kind: str, event_id: str | None, **details: object) -> None:
            calls.append((kind, event_id, details))

    monkeypatch.setattr(tracelog, "local", Recorder)
    return calls


def test_applied_events_measure_the_end_to_end_lag_and_are_recorded(recorded) -> None:  # type: ignore[no-untyped-def]
    metrics = Metrics()
    event = new_event(type="MENU_ITEM_CREATED", origin=Origin("west", "shop", "menu"), data={}, subject="7")
    late = event.model_copy(update={"time": datetime.now(UTC) - timedelta(seconds=42)})
    outcomes.applied(metrics, trace.APPLIED, late, "q")
    outcomes.applied(metrics, trace.DUPLICATE, late, "q")  # not applied now: no lag
    outcomes.applied(metrics, trace.OWN, event, "q")
    sample = metrics.registry.get_sample_value
    assert sample("rabbitsync_end_to_end_lag_seconds_count", {"type": "MENU_ITEM_CREATED"}) == 1
    assert 42 <= (sample("rabbitsync_end_to_end_lag_seconds_sum", {"type": "MENU_ITEM_CREATED"}) or 0) < 60
    assert sample("rabbitsync_end_to_end_lag_seconds_bucket", {"type": "MENU_ITEM_CREATED", "le": "30.0"}) == 0
    assert [kind for kind, _id, _d in recorded] == ["applied", "duplicate", "own"]
    assert recorded[0][2]["subject"] == "7" and recorded[0][2]["source"] == event.source


def test_lag_is_never_negative_when_the_publisher_clock_runs_ahead() -> None:
    event = new_event(type="T", origin=Origin("west", "shop", "menu"), data={})
    ahead = event.model_copy(update={"time": datetime.now(UTC) + timedelta(seconds=5)})
    assert outcomes.lag_seconds(ahead) == 0.0


def test_retries_say_why_and_dead_letters_say_the_reason_and_attempts(recorded) -> None:  # type: ignore[no-untyped-def]
    message = IncomingMessage(tag=1, body=b"{}", headers={}, message_id="ev-9", type="MENU_ITEM_CREATED")
    retry = routing.after_failure(spec(), {}, KeyError("price"))
    outcomes.rerouted(message, "q", retry)
    dead = routing.after_failure(spec(), {routing.ATTEMPT: 2}, KeyError("price"))
    outcomes.rerouted(message, "q", dead)
    outcomes.rerouted(message, "q", routing.Discard(reason="failed"))  # nothing was sent: no record
    (k1, id1, retried), (k2, _id2, dead_lettered) = recorded
    assert (k1, id1, retried["attempt"], retried["error"]) == ("retried", "ev-9", 1, "builtins.KeyError: 'price'")
    assert (k2, dead_lettered["attempt"], dead_lettered["reason"]) == ("dead-lettered", 2, "failed")
    assert dead_lettered["error"] == "'price'"
