"""The publisher's side of a backfill: the sidecar takes requests from its queue and serves them.

Why the sidecar and not the web process's relay thread: a web Deployment runs several processes
(gunicorn workers, replicas) that all come and go with traffic and deploys, while the sidecar is the
one long-lived broker client per pod that already holds the service's database, settings and broker
identity; it runs only where the operator injected it, and the request queue's competing consumers
give each request to one sidecar of the service. A snapshot takes long (pages of reads and confirms),
so it runs on a worker thread while this thread keeps the request's connection served (heartbeats),
as the consumer does for handlers.

The request is acknowledged only after the run's end marker is confirmed. A sidecar killed or stopped
mid-run leaves the request unacknowledged: the broker hands it to the next sidecar, which serves a new
run from the start (safe, see :mod:`rabbitsync.django.backfill`). A request that can never be served
(malformed, no source for its types, refused by the broker) is logged and dropped: serving it again
would fail the same way; the requesting side sees no end marker and reports it.
"""

from __future__ import annotations

import collections
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections

from rabbitsync.backoff import Backoff
from rabbitsync.django import connection
from rabbitsync.django.backfill import Cancelled, NothingToServe, serve
from rabbitsync.django.conf import Settings
from rabbitsync.events import InvalidEvent
from rabbitsync.events.backfill import BackfillEnd, BackfillRequest, decode_request
from rabbitsync.sidecar.metrics import Metrics
from rabbitsync.topology import naming
from rabbitsync.transport import BrokerError, ConfirmedPublisher, IncomingMessage, NotFound, Session, open_session

log = logging.getLogger(__name__)

_WAIT = 0.2
"""Seconds one turn of the loop waits for I/O; bounds how late a stop request is noticed."""
MISSING_QUEUE_POLL = 30.0
"""Seconds between looks for a request queue that does not exist: nobody asked this service for a
backfill yet (``rabbitsync backfill`` declares the queue with the first request), no hurry."""


class SnapshotServer:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self.queue = naming.backfill_request_queue(settings.cluster, settings.namespace, settings.service)
        self._endpoint = connection.endpoint(settings)
        self._backoff = Backoff(initial=0.5, cap=settings.reconnect_max_delay)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rabbitsync-snapshot")

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="rabbitsync-backfill", daemon=True)
        thread.start()
        return thread

    def run(self, stop: threading.Event) -> None:
        """Serve requests until ``stop`` is set; a broker failure (the queue not declared yet too) redials."""
        publisher = connection.publisher(self._settings, role="backfill").start()
        try:
            while not stop.is_set():
                try:
                    self._session(stop, publisher)
                except NotFound:
                    log.info("no backfill request queue yet", extra={"queue": self.queue})
                    stop.wait(MISSING_QUEUE_POLL)
                except BrokerError as e:
                    delay = self._backoff.next()
                    log.warning(
                        "backfill requests: connection lost or queue missing, retrying",
                        extra={"queue": self.queue, "error": f"{type(e).__name__}: {e}", "delay_s": round(delay, 2)},
                    )
                    stop.wait(delay)
        finally:
            self._worker.shutdown(wait=True)
            publisher.close()

    def _session(self, stop: threading.Event, publisher: ConfirmedPublisher) -> None:
        requests: collections.deque[IncomingMessage] = collections.deque()
        with open_session(
            self._endpoint,
            name=connection.connection_name(self._settings, "backfill"),
            timeouts=connection.timeouts(self._settings),
        ) as session:
            # One request at a time per sidecar: others wait for the next sidecar or this one's next turn.
            session.consume(self.queue, prefetch=1, deliver=requests.append)
            self._backoff.reset()
            log.info("serving backfill requests", extra={"queue": self.queue})
            while not stop.is_set():
                if cancelled := session.cancelled_queues():
                    raise BrokerError(f"request consumer cancelled: {cancelled}")
                if requests:
                    self._handle(session, requests.popleft(), publisher, stop)
                else:
                    session.pump(_WAIT)

    def _handle(
        self, session: Session, message: IncomingMessage, publisher: ConfirmedPublisher, stop: threading.Event
    ) -> None:
        try:
            request = decode_request(message.body)
        except InvalidEvent as e:
            log.error("dropped a malformed backfill request", extra={"error": str(e)})
            session.ack(message.tag, message.channel)
            return
        future = self._worker.submit(self._serve, request, publisher, stop)
        future.add_done_callback(lambda _future: session.wake())
        while not future.done():
            session.pump(_WAIT)
        try:
            end = future.result()
        except Cancelled:
            return  # not acked: the request goes back to the queue when this session closes
        except (NothingToServe, BrokerError) as e:
            if isinstance(e, BrokerError) and not e.permanent:
                raise
            log.error("backfill request cannot be served", extra={"request": request.id, "error": str(e)})
        else:
            self._metrics.backfills_served.inc()
            self._metrics.backfill_events_sent.inc(end.count)
        session.ack(message.tag, message.channel)

    def _serve(self, request: BackfillRequest, publisher: ConfirmedPublisher, stop: threading.Event) -> BackfillEnd:
        close_old_connections()
        log.info("serving backfill", extra={"request": request.id, "queue": request.queue, "types": request.types})
        try:
            return serve(request, publisher, self._settings, cancelled=stop.is_set)
        finally:
            close_old_connections()
