"""The trace writer: appends outcome records to the trace stream, best effort, off the delivery path.

Relays and sidecars call :meth:`TraceLog.record` where an event's fate is decided (confirmed, applied,
retried, dead-lettered). The call only puts a record in a bounded in-memory buffer: it never blocks,
never touches the network and never raises, so a trace stream that is missing, full, slow or on a
broker that is away can neither slow down nor break delivery. A thread of its own sends the buffer
every :data:`FLUSH_INTERVAL` through a publisher on a connection of its own (a blocked or closed trace
connection stalls nothing else). When the buffer is full the oldest records go first, and records
the broker does not take are not retried: the trace is a debugging aid, the inbox and the queues
stay the truth. ``dropped`` counts what was lost. After a batch the broker refused, the log waits
(:data:`PAUSE_INITIAL`, doubling up to :data:`PAUSE_CAP`) before the next: a missing trace exchange
closes the channel, so sending every flush would redial the broker five times a second from every
process of every service, and log each time.

One log per process (:func:`start` / :func:`local`): the outbox relay starts it with the process's
relay (web process and sidecar alike), and everything else finds it with :func:`local`, which is a
log that records nothing until then (in tests, with ``TRACE`` off, or before the relay starts).
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from rabbitsync.backoff import Backoff
from rabbitsync.conventions import trace_name
from rabbitsync.django import connection
from rabbitsync.django.conf import Settings
from rabbitsync.events import MessageProperties, trace
from rabbitsync.topology.trace import ROUTING_KEY
from rabbitsync.transport import ConfirmedPublisher, OutgoingMessage, PublishHandle

log = logging.getLogger(__name__)

CAPACITY = 10_000
"""Records held while the stream cannot take them (about 3 MB); past it the oldest are dropped."""
FLUSH_INTERVAL = 0.2
"""Seconds between sends: records leave in batches, a few hundred milliseconds after the fact."""
BATCH = 500
"""Records per publish at most."""
PAUSE_INITIAL = 1.0
"""Seconds without sending after the broker refused a batch (the first time; jittered)."""
PAUSE_CAP = 60.0
"""The longest pause while the broker keeps refusing: a stream declared later is written within it."""


@dataclass(frozen=True)
class Writer:
    """Who writes the records: the replica named in each of them."""

    cluster: str
    namespace: str
    service: str
    pod: str
    exchange: str
    """The shared events exchange; the records go to its trace exchange."""


class TraceLog:
    """The records of one process on their way to the trace stream; without a publisher, none are kept."""

    def __init__(
        self,
        writer: Writer,
        publisher: ConfirmedPublisher | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._writer = writer
        self._exchange = trace_name(writer.exchange)
        self._publisher = publisher
        self._clock = clock
        self._buffer: collections.deque[trace.TraceRecord] = collections.deque(maxlen=CAPACITY)
        self._in_flight: PublishHandle | None = None
        self._pauses = Backoff(initial=PAUSE_INITIAL, cap=PAUSE_CAP)
        self._resume_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def record(self, kind: str, event_id: str | None, **details: object) -> None:
        """Note what happened to ``event_id`` (the other fields of :class:`~rabbitsync.events.trace.TraceRecord`).

        Never raises, never waits.
        """
        if self._publisher is None or not event_id or self._stop.is_set():
            return
        try:
            w = self._writer
            entry = trace.TraceRecord(
                kind=kind,
                event_id=event_id,
                at=trace.now(),
                cluster=w.cluster,
                namespace=w.namespace,
                service=w.service,
                pod=w.pod,
                **{k: _plain(v) for k, v in details.items()},  # type: ignore[arg-type]
            )
            if len(self._buffer) == CAPACITY:
                self.dropped += 1
            self._buffer.append(entry)
        except Exception:  # a trace must never cost a delivery
            self.dropped += 1
            log.debug("trace record not kept", exc_info=True)

    def start(self) -> TraceLog:
        if self._publisher is not None and self._thread is None:
            self._publisher.start()
            self._thread = threading.Thread(target=self._run, name="rabbitsync-trace", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Send what is buffered if the stream takes it within ``timeout``, then close."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._publisher is not None:
            self._publisher.close(timeout)

    def flush(self) -> bool:
        """Send one batch if the previous one is settled, no pause is on and the connection is up;
        whether one was sent."""
        if self._in_flight is not None:
            if not self._in_flight.done():
                return False
            self._count_outcome(self._in_flight)
            self._in_flight = None
        publisher = self._publisher
        if publisher is None or not self._buffer or self._clock() < self._resume_at or not publisher.ready():
            return False
        batch = [self._buffer.popleft() for _ in range(min(BATCH, len(self._buffer)))]
        self._in_flight = publisher.submit([self._message(entry) for entry in batch])
        return True

    def _count_outcome(self, handle: PublishHandle) -> None:
        lost = sum(outcome is not None for outcome in handle.outcomes())
        if lost:
            self.dropped += lost
            self._resume_at = self._clock() + self._pauses.next()
        else:
            self._pauses.reset()

    def _message(self, entry: trace.TraceRecord) -> OutgoingMessage:
        return OutgoingMessage(
            exchange=self._exchange,
            routing_key=ROUTING_KEY,
            body=trace.encode(entry),
            properties=MessageProperties(
                message_id=entry.event_id, type=entry.kind, timestamp=int(time.time()), delivery_mode=1
            ),
        )

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL):
            self._flush_safely()
        # Stopping: what is buffered gets one more chance, as far as the stream keeps up.
        while self._flush_safely():
            pass

    def _flush_safely(self) -> bool:
        try:
            return self.flush()
        except Exception:  # the thread outlives anything: records are best effort
            log.debug("trace flush failed", exc_info=True)
            return False


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def writer(settings: Settings) -> Writer:
    return Writer(
        cluster=settings.cluster or "",
        namespace=settings.namespace or "",
        service=settings.service or "",
        pod=os.environ.get("HOSTNAME", ""),
        exchange=settings.exchange,
    )


_NOTHING = TraceLog(Writer("", "", "", "", ""))
_local = _NOTHING
_local_pid: int | None = None
_lock = threading.Lock()


def start(settings: Settings) -> TraceLog:
    """This process's log, started on first call (again after a fork); one that keeps nothing with ``TRACE`` off."""
    global _local, _local_pid
    with _lock:
        if _local_pid != os.getpid():
            publisher = connection.publisher(settings, role="trace") if settings.trace else None
            _local, _local_pid = TraceLog(writer(settings), publisher).start(), os.getpid()
        return _local


def local() -> TraceLog:
    """The log :func:`start` started in this process, else one that keeps nothing."""
    return _local if _local_pid == os.getpid() else _NOTHING


def stop() -> None:
    global _local, _local_pid
    with _lock:
        log_, _local, _local_pid = _local, _NOTHING, None
    log_.stop()
