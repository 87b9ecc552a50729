"""The consume loop: deliveries in, handlers applied off the I/O thread, acks after the commit.

Why ``BlockingConnection`` plus one handler thread: the loop reads as the protocol it follows
(receive, apply, ack or reroute, repeat), and reconnecting is a plain ``while`` around a session.
Handlers run on a single worker thread while this thread keeps calling
``process_data_events``, so heartbeats are answered however long a handler takes. One worker
means one event at a time per sidecar, in queue order: SQLite has one writer anyway, and for
more throughput one runs more replicas. Failed-delivery publishes go through the separate
confirmed publisher and are confirmed before the original is acked.

Every pika exception ends the session and is handled here: the loop redials with jittered,
capped backoff until the stop event is set. Unacked deliveries return to the queue on their own.
"""

from __future__ import annotations

import collections
import contextvars
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import pika
import pika.exceptions
from django.db import close_old_connections

from rabbitsync.django.backoff import Backoff
from rabbitsync.django.broker import BrokerError, ConfirmedPublisher, OutgoingMessage, connection_parameters
from rabbitsync.django.conf import Settings
from rabbitsync.django.inbox import NoHandler, Outcome, Reject, apply
from rabbitsync.events import CONTENT_TYPE, CloudEvent, InvalidEvent, MessageProperties, decode
from rabbitsync.sidecar import routing
from rabbitsync.sidecar.health import State
from rabbitsync.sidecar.logs import current_event_id
from rabbitsync.sidecar.metrics import Metrics
from rabbitsync.topology.sidecar_contract import ConsumerSpec

log = logging.getLogger(__name__)

_IDLE_WAIT = 0.2
"""Seconds one idle turn of the loop waits for I/O; bounds how late a stop request is noticed."""
_BUSY_WAIT = 0.05
"""Seconds per turn while a handler or a publish is in flight; a completion wakes it earlier."""


@dataclass(frozen=True)
class Delivery:
    spec: ConsumerSpec
    tag: int
    properties: Any
    body: bytes


class _SessionOver(Exception):
    """The broker cancelled our consumer (queue deleted): start a new session."""


class Consumer:
    def __init__(
        self,
        settings: Settings,
        specs: list[ConsumerSpec],
        *,
        publisher: ConfirmedPublisher,
        metrics: Metrics,
        state: State,
        apply_event: Callable[[CloudEvent], Outcome] = apply,
    ) -> None:
        self._settings = settings
        self._specs = specs
        self._publisher = publisher
        self._metrics = metrics
        self._state = state
        self._apply_event = apply_event
        self._params = connection_parameters(
            settings.amqp_url,
            name=f"rabbitsync-sidecar-{settings.service}",
            heartbeat=settings.heartbeat,
            blocked_connection_timeout=settings.blocked_connection_timeout,
        )
        self._backoff = Backoff(initial=0.2, cap=settings.reconnect_max_delay)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rabbitsync-handler")

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; the in-flight delivery is finished and acked first."""
        try:
            while not stop.is_set():
                try:
                    self._session(stop)
                except (pika.exceptions.AMQPError, BrokerError, _SessionOver) as e:
                    self._state.consuming = False
                    if stop.is_set():
                        break
                    delay = self._backoff.next()
                    log.warning(
                        "consumer connection lost, reconnecting",
                        extra={"error": f"{type(e).__name__}: {e}", "delay_s": round(delay, 2)},
                    )
                    self._metrics.reconnects.labels("consumer").inc()
                    stop.wait(delay)
        finally:
            self._worker.shutdown(wait=True)

    # -- one connection ----------------------------------------------------------------------------

    def _session(self, stop: threading.Event) -> None:
        connection = pika.BlockingConnection(self._params)
        try:
            channel = connection.channel()
            buffer: collections.deque[Delivery] = collections.deque()
            cancelled: list[str] = []
            channel.add_on_cancel_callback(lambda frame: cancelled.append(str(frame)))
            for spec in self._specs:
                # basic_qos without global applies to the consumers created after it on this channel.
                channel.basic_qos(prefetch_count=spec.prefetch)
                channel.basic_consume(spec.queue, partial(self._received, buffer, spec), auto_ack=False)
            self._state.consuming = True
            self._backoff.reset()
            log.info("consuming", extra={"queues": [s.queue for s in self._specs]})
            while not stop.is_set():
                self._state.turn()
                if cancelled:
                    raise _SessionOver(f"consumer cancelled by the broker: {cancelled[0]}")
                if buffer:
                    self._handle(connection, channel, buffer.popleft())
                else:
                    connection.process_data_events(time_limit=_IDLE_WAIT)
            log.info("stopping: in-flight delivery done, closing the connection")
        finally:
            self._state.consuming = False
            # Deliveries still buffered were never acked: closing hands them back to the queue.
            try:
                if connection.is_open:
                    connection.close()
            except pika.exceptions.AMQPError:
                log.debug("connection already gone while closing", exc_info=True)

    @staticmethod
    def _received(
        buffer: collections.deque[Delivery], spec: ConsumerSpec, _ch: Any, method: Any, properties: Any, body: bytes
    ) -> None:
        buffer.append(Delivery(spec, method.delivery_tag, properties, body))

    # -- one delivery ------------------------------------------------------------------------------

    def _handle(self, connection: pika.BlockingConnection, channel: Any, delivery: Delivery) -> None:
        spec, headers = delivery.spec, delivery.properties.headers or {}
        self._metrics.consumed.labels(spec.queue).inc()
        token = current_event_id.set(delivery.properties.message_id)
        try:
            try:
                event = decode(delivery.body)
            except InvalidEvent as e:
                log.error("poison message: not a valid event", extra={"error": str(e)})
                self._reroute(connection, channel, delivery, routing.poison(spec, headers, e))
                return
            current_event_id.set(event.id)
            started = time.monotonic()
            future = self._worker.submit(contextvars.copy_context().run, self._apply, event)
            future.add_done_callback(partial(_wake, connection))
            self._pump(connection, future.done)
            self._metrics.handler_seconds.labels(event.type).observe(time.monotonic() - started)
            try:
                outcome = future.result()
            except (NoHandler, Reject) as e:
                log.error("poison message: no retry can apply it", extra={"type": event.type, "error": str(e)})
                action = routing.poison(spec, headers, e)
            except Exception as e:  # the handler's failure, whatever it is, is the event's, not ours
                action = routing.after_failure(spec, headers, e)
                log.warning(
                    "handler failed",
                    extra={"type": event.type, "attempt": routing.attempt_of(headers), "error": repr(e)},
                )
            else:
                channel.basic_ack(delivery.tag)
                self._count(outcome, event)
                return
            self._reroute(connection, channel, delivery, action)
        finally:
            current_event_id.reset(token)

    def _apply(self, event: CloudEvent) -> Outcome:
        # This thread lives for the whole process: drop connections the database closed meanwhile.
        close_old_connections()
        return self._apply_event(event)

    def _count(self, outcome: Outcome, event: CloudEvent) -> None:
        if outcome is Outcome.APPLIED:
            self._metrics.applied.labels(event.type).inc()
            log.info("applied", extra={"type": event.type})
        elif outcome is Outcome.DUPLICATE:
            self._metrics.duplicates.inc()
            log.info("duplicate skipped", extra={"type": event.type})
        else:
            self._metrics.own.inc()
            log.debug("own event skipped", extra={"type": event.type})

    def _reroute(
        self, connection: pika.BlockingConnection, channel: Any, delivery: Delivery, action: routing.Action
    ) -> None:
        """Publish the copy (confirmed) to its retry or dead-letter queue, then ack the original."""
        spec = delivery.spec
        if isinstance(action, routing.Discard):
            log.error("dropping failed delivery: dead-lettering is off", extra={"reason": action.reason})
            self._metrics.discarded.labels(spec.queue).inc()
            channel.basic_ack(delivery.tag)
            return
        props = delivery.properties
        message = OutgoingMessage(
            exchange="",
            routing_key=action.queue,
            body=delivery.body,
            properties=MessageProperties(
                # mandatory returns are matched on message_id, so a copy always has one
                message_id=props.message_id or f"rabbitsync-{uuid.uuid4().hex}",
                type=props.type or "",
                timestamp=props.timestamp or int(time.time()),
                content_type=props.content_type or CONTENT_TYPE,
            ),
            headers=action.headers,
            mandatory=True,
        )
        # Right after a broker hiccup the publisher may still be redialling: give it the time a
        # confirm may take rather than failing the session and running the handler once more.
        self._pump(connection, self._publisher.ready, deadline=self._settings.confirm_timeout)
        handle = self._publisher.submit([message])
        self._pump(connection, handle.done, deadline=self._settings.confirm_timeout)
        handle.wait(0)  # raises BrokerError: the session ends, the original is redelivered later
        channel.basic_ack(delivery.tag)
        if isinstance(action, routing.Retry):
            self._metrics.retried.labels(spec.queue).inc()
            log.info("scheduled retry", extra={"queue": action.queue, "next_attempt": action.attempt})
        else:
            self._metrics.dead_lettered.labels(spec.queue, action.reason).inc()
            log.error(
                "dead-lettered",
                extra={
                    "queue": action.queue,
                    "reason": action.reason,
                    "error": action.headers.get(routing.EXCEPTION_MESSAGE),
                },
            )

    def _pump(
        self, connection: pika.BlockingConnection, done: Callable[[], bool], deadline: float | None = None
    ) -> None:
        """Serve the connection (heartbeats, incoming deliveries) until ``done()`` or the deadline."""
        limit = None if deadline is None else time.monotonic() + deadline
        while not done() and (limit is None or time.monotonic() < limit):
            self._state.turn()
            connection.process_data_events(time_limit=_BUSY_WAIT)


def _wake(connection: pika.BlockingConnection, _future: Future[Any]) -> None:
    # Interrupts process_data_events on the I/O thread so the ack follows the commit at once.
    try:
        connection.add_callback_threadsafe(lambda: None)
    except Exception:  # connection already closed: the loop notices on its own
        log.debug("could not wake the I/O thread", exc_info=True)
