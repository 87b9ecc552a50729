"""The consume loop: deliveries in, handlers applied off the I/O thread, acks after the commit.

Why ``BlockingConnection`` plus one handler thread: the loop reads as the protocol it follows
(receive, apply, ack or reroute, repeat), and reconnecting is a plain ``while`` around a session.
Handlers run on a single worker thread while this thread keeps calling
``process_data_events``, so heartbeats are answered however long a handler takes. One worker
means one event at a time per sidecar, in queue order: SQLite has one writer anyway, and for
more throughput one runs more replicas. Failed-delivery publishes go through the separate
confirmed publisher and are confirmed before the original is acked. Before any handler runs, the
delivery must pass :mod:`rabbitsync.sidecar.trust` (who published it, what type it is); one that
does not is dead-lettered at once with the reason.

Every broker failure (a :class:`rabbitsync.transport.BrokerError`) ends the session and is handled
here: the loop redials with jittered, capped backoff until the stop event is set. Unacked
deliveries return to the queue on their own. The backoff starts over only once a session has
lasted a while, so a connection that dies right after it starts consuming (a message that kills
it) is redialled ever more slowly, not in a tight loop. Each queue has a channel of its own: a
missing or deleted queue stops its subscription only, retried on a schedule of its own
(:mod:`rabbitsync.sidecar.subscriptions`).

Failures and attempts. Only the handler's own exceptions spend an attempt (retry queue, then the
dead-letter queue). A database that cannot be reached (:func:`rabbitsync.sidecar.outages.unavailable`)
pauses consumption instead: the same delivery stays unacknowledged (the broker neither redelivers
it nor counts a delivery), the loop keeps the connection alive and asks the database with jittered,
capped backoff, and applies the delivery once it answers. If the database answers at once, the
error was the handler's (a broken query, say) and counts as an attempt. A ``BaseException``
(``SystemExit``, ``KeyboardInterrupt``...) raised by a handler is a failure of that handler like any
other, never the end of the loop.
"""

from __future__ import annotations

import collections
import contextvars
import enum
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import close_old_connections

from rabbitsync.backoff import Backoff
from rabbitsync.django import connection, inbox
from rabbitsync.django.conf import Settings
from rabbitsync.django.inbox import NoHandler, Outcome, Reject, apply
from rabbitsync.events import CloudEvent, InvalidEvent, decode
from rabbitsync.events.backfill import BackfillEnd
from rabbitsync.events.headers import EXCEPTION_MESSAGE, vouched_publisher, with_publisher
from rabbitsync.sidecar import admission, backfill, outages, outcomes, routing, trust
from rabbitsync.sidecar.health import State
from rabbitsync.sidecar.logs import current_event_id
from rabbitsync.sidecar.metrics import Metrics
from rabbitsync.sidecar.subscriptions import Subscriptions
from rabbitsync.topology.sidecar_contract import ConsumerSpec
from rabbitsync.transport import (
    AccessRefused,
    BrokerError,
    ConfirmedPublisher,
    IncomingMessage,
    NotFound,
    OutgoingMessage,
    Session,
    open_session,
)

log = logging.getLogger(__name__)

_IDLE_WAIT = 0.2
"""Seconds one idle turn of the loop waits for I/O; bounds how late a stop request is noticed."""
_BUSY_WAIT = 0.05
"""Seconds per turn while a handler or a publish is in flight; a completion wakes it earlier."""
_STABLE_SESSION = 10.0
"""Seconds a session must last before the redial backoff starts over."""
_PAUSE_INITIAL = 0.5
"""Seconds before the database is first asked again after it failed; doubles up to the reconnect cap."""


@dataclass(frozen=True)
class Delivery:
    spec: ConsumerSpec
    message: IncomingMessage


class HandlerAborted(Exception):
    """A handler raised a ``BaseException`` that is not an ``Exception``: still that handler's failure."""


class _Resume(enum.Enum):
    RETRY = "retry"
    """The database answers again: apply the same delivery once more, no attempt spent."""
    COUNT = "count"
    """The database answered at once: the error was the handler's own."""
    STOP = "stop"
    """Asked to stop while paused: leave the delivery unacknowledged."""


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
        # Built now so that a malformed URL stops the sidecar at start instead of being redialled.
        self._endpoint = connection.endpoint(settings)
        # Parsed once: every delivery's trust check compares against it.
        self._own_user = self._endpoint.username
        self._backoff = Backoff(initial=0.2, cap=settings.reconnect_max_delay)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rabbitsync-handler")
        self._stop = threading.Event()
        metrics.handler_in_flight.set_function(state.handler_age)

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; the in-flight delivery is finished and acked first."""
        self._stop = stop
        try:
            while not stop.is_set():
                try:
                    self._session(stop)
                except BrokerError as e:
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
        buffer: collections.deque[Delivery] = collections.deque()
        subscriptions = Subscriptions(self._specs, cap=self._settings.reconnect_max_delay)
        with open_session(
            self._endpoint,
            name=connection.connection_name(self._settings, "sidecar"),
            timeouts=connection.timeouts(self._settings),
        ) as session:
            # Deliveries still buffered when the session ends were never acked: closing hands them
            # back to the queue.
            stable_at = time.monotonic() + _STABLE_SESSION
            try:
                while not stop.is_set():
                    self._state.turn()
                    self._subscribe(session, subscriptions, buffer)
                    if stable_at and time.monotonic() >= stable_at:
                        self._backoff.reset()
                        stable_at = 0.0
                    if buffer:
                        self._handle(session, buffer.popleft())
                    else:
                        session.pump(_IDLE_WAIT)
                log.info("stopping: in-flight delivery done, closing the connection")
            finally:
                self._state.consuming = False
                for spec in self._specs:
                    self._metrics.subscription_consuming.labels(spec.queue).set(0)

    def _subscribe(self, session: Session, subscriptions: Subscriptions, buffer: collections.deque[Delivery]) -> None:
        """Stop the queues the broker cancelled; (re)start those due. Others are left alone."""
        for queue, why in session.cancelled_queues().items():
            session.stop(queue)
            # Their unacked deliveries went back with the channel: acking them is no longer possible.
            kept = [d for d in buffer if d.spec.queue != queue]
            buffer.clear()
            buffer.extend(kept)
            self._down(subscriptions, queue, f"consumer cancelled by the broker: {why}")
        for spec in subscriptions.due():
            try:
                session.consume(spec.queue, prefetch=spec.prefetch, deliver=partial(_buffer, buffer, spec))
            except (NotFound, AccessRefused) as e:  # that channel only: the connection lives on
                self._down(subscriptions, spec.queue, str(e))
                continue
            subscriptions.up(spec.queue)
            self._metrics.subscription_consuming.labels(spec.queue).set(1)
            log.info("consuming", extra={"queue": spec.queue})
        self._state.consuming = subscriptions.all_up()

    def _down(self, subscriptions: Subscriptions, queue: str, why: str) -> None:
        delay = subscriptions.down(queue)
        self._metrics.subscription_consuming.labels(queue).set(0)
        log.warning(
            "queue not consumed, trying again later", extra={"queue": queue, "error": why, "delay_s": round(delay, 2)}
        )

    # -- one delivery ------------------------------------------------------------------------------

    def _handle(self, session: Session, delivery: Delivery) -> None:
        spec, message = delivery.spec, delivery.message
        self._metrics.consumed.labels(spec.queue).inc()
        token = current_event_id.set(message.message_id)
        try:
            publisher = vouched_publisher(message.user_id, message.headers, self._own_user)
            # Every copy we publish (retry, dead letter) carries the publisher we verified, never a claim.
            headers = with_publisher(message.headers, publisher)
            if backfill.is_end(message.headers):
                self._end_backfill(session, delivery, publisher, headers)
                return
            admitted = self._admit(spec, message, publisher, headers)
            action = (
                self._apply_and_ack(session, delivery, admitted, headers)
                if isinstance(admitted, CloudEvent)
                else admitted
            )
            if action is not None:
                self._reroute(session, delivery, action)
        finally:
            current_event_id.reset(token)

    def _admit(
        self, spec: ConsumerSpec, message: IncomingMessage, publisher: str | None, headers: dict[str, Any]
    ) -> CloudEvent | routing.Action:
        """The event, if it may be applied; otherwise where the delivery goes, at once."""
        try:
            trust.route(message.exchange, message.user_id, self._own_user)
            admission.check(message, max_body_bytes=self._settings.max_body_bytes)
            event = decode(message.body)
            trust.check(event, publisher, events=spec.events, namespace=self._settings.namespace)
            backfill.check_addressed(event, message.routing_key, namespace=self._settings.namespace, queue=spec.queue)
        except InvalidEvent as e:
            log.error("poison message: not a valid event", extra={"error": str(e)})
            return routing.poison(spec, headers, e)
        except (trust.Untrusted, admission.Refused) as e:
            log.error("refused: not applied", extra={"type": message.type, "reason": e.reason, "error": str(e)})
            return routing.poison(spec, headers, e, reason=e.reason)
        return event

    def _apply_and_ack(
        self, session: Session, delivery: Delivery, event: CloudEvent, headers: dict[str, Any]
    ) -> routing.Action | None:
        """Apply ``event`` off the I/O thread and ack it; where it goes instead if the handler failed.

        ``None`` also when asked to stop while the database was away: the delivery stays unacked.
        """
        current_event_id.set(event.id)
        while True:
            started = time.monotonic()
            future = self._off_thread(session, partial(self._apply, event), handler=True)
            self._metrics.handler_seconds.labels(event.type).observe(time.monotonic() - started)
            error = future.exception()
            if error is None:
                session.ack(delivery.message.tag, delivery.message.channel)
                self._count(future.result(), event, delivery.spec.queue)
                return None
            resume = self._pause(session, error) if outages.unavailable(error) else _Resume.COUNT
            if resume is _Resume.STOP:
                return None
            if resume is _Resume.COUNT:
                return self._failed(delivery.spec, event, headers, error)

    def _failed(
        self, spec: ConsumerSpec, event: CloudEvent, headers: dict[str, Any], error: BaseException
    ) -> routing.Action:
        if isinstance(error, NoHandler | Reject):
            log.error("poison message: no retry can apply it", extra={"type": event.type, "error": str(error)})
            return routing.poison(spec, headers, error)
        # the handler's failure, whatever it is, is the event's, not ours
        log.warning(
            "handler failed",
            extra={"type": event.type, "attempt": routing.attempt_of(headers), "error": repr(error)},
        )
        return routing.after_failure(spec, headers, error)

    def _end_backfill(
        self, session: Session, delivery: Delivery, publisher: str | None, headers: dict[str, Any]
    ) -> None:
        """A run's end marker: acked once the whole run is applied, retried until then."""
        spec, message = delivery.spec, delivery.message
        try:
            trust.route(message.exchange, message.user_id, self._own_user)
            end = backfill.verify_end(message.body, publisher, namespace=self._settings.namespace)
        except trust.Untrusted as e:
            log.error("refused backfill end marker", extra={"reason": e.reason, "error": str(e)})
            self._reroute(session, delivery, routing.poison(spec, headers, e, reason=e.reason))
            return
        except InvalidEvent as e:
            log.error("poison message: not a backfill end marker", extra={"error": str(e)})
            self._reroute(session, delivery, routing.poison(spec, headers, e))
            return
        future = self._off_thread(session, partial(self._in_worker, backfill.confirm_complete, end))
        try:
            applied = future.result()
        except backfill.Incomplete as e:
            log.info("backfill not complete yet", extra={"run": end.run, "error": str(e)})
            self._report_backfill(session, backfill.report(spec.queue, end, e.applied))
            self._reroute(session, delivery, routing.after_failure(spec, headers, e))
            return
        self._report_backfill(session, backfill.report(spec.queue, end, applied))
        session.ack(message.tag, message.channel)
        self._metrics.backfills_completed.labels(spec.queue).inc()
        log.info("backfill complete", extra={"run": end.run, "sent": end.count, "applied": applied})

    def _report_backfill(self, session: Session, report: OutgoingMessage) -> None:
        """Tell the operator how far a run got, confirmed before the end marker is acked or retried."""
        self._pump(session, self._publisher.ready, deadline=self._settings.confirm_timeout)
        handle = self._publisher.submit([report])
        self._pump(session, handle.done, deadline=self._settings.confirm_timeout)
        handle.wait(0)  # raises BrokerError: the session ends, the marker comes back and is reported again

    def _in_worker(self, fn: Callable[[BackfillEnd], int], end: BackfillEnd) -> int:
        close_old_connections()
        return fn(end)

    def _apply(self, event: CloudEvent) -> Outcome:
        # This thread lives for the whole process: drop connections the database closed meanwhile.
        close_old_connections()
        try:
            return self._apply_event(event)
        except Exception:
            raise
        except BaseException as e:  # SystemExit & co. from handler code must not end the loop
            raise HandlerAborted(f"handler raised {type(e).__name__}: {e}") from e

    def _off_thread(self, session: Session, fn: Callable[[], Any], *, handler: bool = False) -> Future[Any]:
        """Run ``fn`` on the worker thread, serving the connection until it is done."""
        future = self._worker.submit(contextvars.copy_context().run, fn)
        # Interrupts the pump on the I/O thread so the ack follows the commit at once.
        future.add_done_callback(lambda _future: session.wake())
        if handler:
            self._state.handler_started = time.monotonic()
        try:
            self._pump(session, future.done)
        finally:
            self._state.handler_started = None
        return future

    # -- database outages --------------------------------------------------------------------------

    def _pause(self, session: Session, error: BaseException) -> _Resume:
        """Wait, serving the connection, until the database answers again (see the module docstring)."""
        self._metrics.infrastructure_errors.labels(type(error).__name__).inc()
        if self._database_answers(session):
            return _Resume.COUNT
        log.warning("database unreachable: consumption paused", extra={"error": repr(error)})
        self._state.paused = f"database unreachable: {type(error).__name__}"
        self._metrics.paused.set(1)
        backoff = Backoff(
            initial=min(_PAUSE_INITIAL, self._settings.reconnect_max_delay), cap=self._settings.reconnect_max_delay
        )
        try:
            while not self._wait(session, backoff.next()):
                if self._database_answers(session):
                    log.info("database back: consumption resumed")
                    return _Resume.RETRY
            return _Resume.STOP
        finally:
            self._state.paused = None
            self._metrics.paused.set(0)

    def _database_answers(self, session: Session) -> bool:
        return self._off_thread(session, inbox.probe).exception() is None

    def _wait(self, session: Session, seconds: float) -> bool:
        """Serve the connection for ``seconds`` or until asked to stop; whether asked to stop."""
        self._pump(session, self._stop.is_set, deadline=seconds)
        return self._stop.is_set()

    def _count(self, outcome: Outcome, event: CloudEvent, queue: str) -> None:
        outcomes.applied(self._metrics, outcome.value, event, queue)
        if outcome is Outcome.APPLIED:
            self._metrics.applied.labels(event.type).inc()
            log.info("applied", extra={"type": event.type})
        elif outcome is Outcome.DUPLICATE:
            self._metrics.duplicates.inc()
            log.info("duplicate skipped", extra={"type": event.type})
        else:
            self._metrics.own.inc()
            log.debug("own event skipped", extra={"type": event.type})

    def _reroute(self, session: Session, delivery: Delivery, action: routing.Action) -> None:
        """Publish the copy (confirmed) to its retry or dead-letter queue, then ack the original."""
        spec, message = delivery.spec, delivery.message
        if isinstance(action, routing.Discard):
            log.error("dropping failed delivery: dead-lettering is off", extra={"reason": action.reason})
            self._metrics.discarded.labels(spec.queue).inc()
            session.ack(message.tag, message.channel)
            return
        # Right after a broker hiccup the publisher may still be redialling: give it the time a
        # confirm may take rather than failing the session and running the handler once more.
        self._pump(session, self._publisher.ready, deadline=self._settings.confirm_timeout)
        handle = self._publisher.submit([message.copy_to(action.queue, action.headers)])
        self._pump(session, handle.done, deadline=self._settings.confirm_timeout)
        handle.wait(0)  # raises BrokerError: the session ends, the original is redelivered later
        session.ack(message.tag, message.channel)
        outcomes.rerouted(message, spec.queue, action)
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
                    "error": action.headers.get(EXCEPTION_MESSAGE),
                },
            )

    def _pump(self, session: Session, done: Callable[[], bool], deadline: float | None = None) -> None:
        """Serve the connection (heartbeats, incoming deliveries) until ``done()`` or the deadline."""
        limit = None if deadline is None else time.monotonic() + deadline
        while not done() and (limit is None or time.monotonic() < limit):
            self._state.turn()
            session.pump(_BUSY_WAIT)


def _buffer(buffer: collections.deque[Delivery], spec: ConsumerSpec, message: IncomingMessage) -> None:
    buffer.append(Delivery(spec, message))
