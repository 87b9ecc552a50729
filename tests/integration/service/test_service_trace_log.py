"""The trace log against a real broker whose trace stream is missing: records are lost, counted, and the
log does not redial the broker at every flush (the channel closes on each refused batch)."""

from __future__ import annotations

import time
import uuid

import pytest

pytestmark = pytest.mark.integration

SECONDS = 10.0


def test_a_missing_trace_stream_costs_records_not_a_redial_every_flush(service):
    from rabbitsync.django import connection, tracelog
    from rabbitsync.django.conf import get_settings
    from rabbitsync.events import trace

    redials = 0

    def redialled() -> None:
        nonlocal redials
        redials += 1

    settings = get_settings()  # this test's exchange, which has no trace exchange and stream
    publisher = connection.publisher(settings, role="trace", on_reconnect=redialled)
    log = tracelog.TraceLog(tracelog.writer(settings), publisher).start()
    try:
        deadline = time.monotonic() + SECONDS
        while time.monotonic() < deadline:  # an event applied every 50 ms
            log.record(trace.APPLIED, uuid.uuid4().hex)
            time.sleep(0.05)
    finally:
        log.stop()
    # Pauses of at most 1, 2 and 4 s after refusals (at least half that): 5 refused batches at most
    # within 10 s; sending at every 200 ms flush redials tens of times.
    assert 1 <= redials <= 5, f"{redials} redials in {SECONDS:.0f}s"
    assert log.dropped > 0, "the broker refused the records (no trace exchange), and they count as lost"
