"""Thousands of events through broker faults and a killed sidecar: every one applied exactly once.

The event count defaults to the issue's 5,000 (``RABBITSYNC_FAULT_EVENTS`` scales it). Events are
published by this process with ``publish()`` in transactions of 100 *while* the faults happen, so
the relay's reconnects are exercised together with the sidecar's. Each test runs in every consumer
mode (one by one, batched, batched on parallel workers over PostgreSQL).
"""

from __future__ import annotations

import collections
import os
import threading
import time

import pytest
from conftest import EVERY_MODE, MODES, make_spec, wait_until

pytestmark = pytest.mark.integration

EVENTS = int(os.environ.get("RABBITSYNC_FAULT_EVENTS", "5000"))
BATCH = 100
PUBLISH_SPAN_S = 10.0
"""How long the publisher of the forced-closes test takes at least: five closes, two seconds apart."""


class Publisher(threading.Thread):
    """Publishes ``count`` events in transactions of ``BATCH``, retrying a batch the DB refused."""

    def __init__(self, uid: str, count: int, start_at: int = 0, pause: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.uid, self.count, self.start_at, self.pause = uid, count, start_at, pause
        self.ids: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        from django.db import connection, transaction

        from rabbitsync.django import publish

        try:
            for first in range(self.start_at, self.start_at + self.count, BATCH):
                with transaction.atomic():
                    batch = [
                        publish("svc.effect", {"n": n}, subject=f"{self.uid}-{n}").id
                        for n in range(first, min(first + BATCH, self.start_at + self.count))
                    ]
                self.ids += batch
                time.sleep(self.pause)
        except BaseException as e:  # surfaced by finish()
            self.error = e
        finally:
            connection.close()

    def finish(self) -> list[str]:
        self.join(120)
        assert self.error is None, repr(self.error)
        assert not self.is_alive()
        return self.ids


def applied() -> int:
    from svcapp.models import Effect

    return Effect.objects.count()


def assert_exactly_once(ids: list[str]) -> None:
    from svcapp.models import Effect

    time.sleep(2)  # a late duplicate would land in this window
    counts = collections.Counter(Effect.objects.values_list("event_id", flat=True))
    assert len(ids) == len(set(ids)) == EVENTS
    missing = [i for i in ids if counts[i] == 0]
    twice = {i: c for i, c in counts.items() if c > 1}
    assert not missing, f"{len(missing)} events never applied"
    assert not twice, f"{len(twice)} events applied more than once"
    assert set(counts) == set(ids)


@EVERY_MODE
def test_connections_force_closed_every_few_seconds(service, uid, sidecars, broker, mode):
    spec = service.declare(make_spec(uid, ["svc.effect"], prefetch=50, batch=MODES[mode].batch))
    sidecar = sidecars(spec, **MODES[mode].env).wait_ready()
    # Paced to span PUBLISH_SPAN_S whatever the machine: on an idle one, 5,000 unpaced events were all
    # applied within two of the closes below, which then did not overlap the flow.
    publisher = Publisher(uid, EVENTS, pause=PUBLISH_SPAN_S / max(1, EVENTS // BATCH))
    publisher.start()
    closes = 0
    deadline = time.monotonic() + 400
    while applied() < EVENTS and time.monotonic() < deadline:
        time.sleep(2)
        broker.close_all_connections()
        closes += 1
    ids = publisher.finish()
    wait_until(lambda: applied() >= EVENTS, 120, f"all {EVENTS} events applied")
    assert_exactly_once(ids)
    assert closes >= 3, "the faults did not overlap the flow; raise RABBITSYNC_FAULT_EVENTS"
    assert sidecar.metric("rabbitsync_reconnects_total") >= 1
    assert sidecar.process.poll() is None  # recovered by itself, never restarted
    print(
        f"{EVENTS} events, {closes} forced closes, {sidecar.metric('rabbitsync_duplicates_skipped_total'):.0f} "
        "duplicates skipped"
    )


@EVERY_MODE
def test_broker_stopped_and_started_mid_stream(service, uid, sidecars, broker, mode):
    spec = service.declare(make_spec(uid, ["svc.effect"], prefetch=50, batch=MODES[mode].batch))
    sidecar = sidecars(spec, **MODES[mode].env).wait_ready()
    first = Publisher(uid, EVENTS // 2)
    first.start()
    wait_until(lambda: applied() >= EVENTS // 10, 120, "the stream to be flowing")
    broker.stop()
    try:
        wait_until(lambda: not sidecar.ready(), 30, "the sidecar to report unready")
        # The second half is published while the broker is away: it waits in the outbox.
        second = Publisher(uid, EVENTS - EVENTS // 2, start_at=EVENTS // 2)
        second.start()
        time.sleep(3)
    finally:
        broker.start()
    ids = first.finish() + second.finish()
    wait_until(lambda: applied() >= EVENTS, 240, f"all {EVENTS} events applied")
    assert_exactly_once(ids)
    assert sidecar.ready()
    assert sidecar.metric("rabbitsync_reconnects_total") >= 1
    assert sidecar.process.poll() is None


@EVERY_MODE
def test_sidecar_killed_mid_batch_and_restarted(service, uid, sidecars, mode):
    spec = service.declare(make_spec(uid, ["svc.effect"], prefetch=50, batch=MODES[mode].batch))
    first_sidecar = sidecars(spec, **MODES[mode].env).wait_ready()
    publisher = Publisher(uid, EVENTS)
    publisher.start()
    wait_until(lambda: applied() >= EVENTS // 4, 120, "a quarter of the events applied")
    first_sidecar.kill()  # SIGKILL: no graceful anything, unacked prefetch and maybe an open transaction
    killed_at = applied()
    assert killed_at < EVENTS
    second_sidecar = sidecars(spec, **MODES[mode].env).wait_ready()
    ids = publisher.finish()
    wait_until(lambda: applied() >= EVENTS, 240, f"all {EVENTS} events applied")
    assert_exactly_once(ids)
    assert service.depth(spec.queue) == 0
    assert second_sidecar.process.poll() is None
