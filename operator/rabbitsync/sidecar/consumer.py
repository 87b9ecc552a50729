"""The consume loop: deliveries in, handlers applied off the I/O thread, acks after the commit.

Why ``BlockingConnection`` plus handler threads: the loop reads as the protocol it follows
(receive, hand over, ack or reroute, repeat), and reconnecting is a plain ``while`` around a
session. This thread owns the connection and never waits on a handler: it checks each delivery
(:mod:`rabbitsync.sidecar.trust`, :mod:`rabbitsync.sidecar.admission`; one that fails is
dead-lettered at once with the reason), hands the event to a lane (:mod:`rabbitsync.sidecar.lanes`)
and goes back to serving the connection, so heartbeats are answered however long a handler takes,
and the next deliveries are read while one is applied. A lane wakes the loop when a batch is done,
and the loop acks what was committed (:mod:`rabbitsync.sidecar.acks`: one ``multiple`` ack for a
run of settled deliveries). Failed-delivery publishes go through the separate confirmed publisher
and are confirmed before the original is acked.

Modes. By default one lane applies one event per transaction, in queue order (SQLite has one
writer anyway). A subscription's ``batch`` (> 1) lets the lane apply up to that many waiting
deliveries in one transaction, each in a savepoint of its own (:func:`rabbitsync.django.inbox.apply_many`),
so a failing event is retried alone while the others commit; a batch that fails as a whole (its
commit, say) is applied again one event at a time. ``CONSUME_WORKERS`` (> 1, PostgreSQL) runs that
many lanes in parallel; an event's lane is chosen from its subject, so events for the same entity
are never applied out of order. A backfill end marker waits until everything before it is applied.

Every broker failure (a :class:`rabbitsync.transport.BrokerError`) ends the session and is handled
here: the loop waits for the batches in flight (an entity's next event must not overtake them), then
redials with jittered, capped backoff until the stop event is set. Unacked deliveries return to the
queue on their own; the inbox makes their second run harmless. The backoff starts over only once a
session has lasted a while, so a connection that dies right after it starts consuming (a message
that kills it) is redialled ever more slowly, not in a tight loop. Each queue has a channel of its
own: a missing or deleted queue stops its subscription only, retried on a schedule of its own
(:mod:`rabbitsync.sidecar.subscriptions`).

Failures and attempts. Only the handler's own exceptions spend an attempt (retry queue, then the
dead-letter queue). A database that cannot be reached (:func:`rabbitsync.sidecar.outages.unavailable`)
pauses consumption instead: the lane keeps the delivery at its head, unacknowledged (the broker
neither redelivers it nor counts a delivery), the loop keeps the connection alive and asks the
database with jittered, capped backoff, and the lane applies the delivery once it answers. If the
database answers at once, the error was the handler's (a broken query, say) and counts as an
attempt. A ``BaseException`` (``SystemExit``, ``KeyboardInterrupt``...) raised by a handler is a
failure of that handler like any other, never the end of the loop.
"""

from __future__ import annotations

import collections
import contextvars
import enum
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import close_old_connections, connections, router

from rabbitsync.backoff import Backoff
from rabbitsync.django import connection, inbox
from rabbitsync.django.conf import Settings
from rabbitsync.django.inbox import NoHandler, Outcome, Reject, apply
from rabbitsync.django.models import InboxMessage
from rabbitsync.events import CloudEvent, InvalidEvent, decode
from rabbitsync.events.backfill import BackfillEnd
from rabbitsync.events.headers import EXCEPTION_MESSAGE, vouched_publisher, with_publisher
from rabbitsync.sidecar import admission, backfill, outages, outcomes, routing, trust
from rabbitsync.sidecar.acks import Acks
from rabbitsync.sidecar.health import State
from rabbitsync.sidecar.lanes import Finished, Lanes
from rabbitsync.sidecar.logs import current_event_id
from rabbitsync.sidecar.metrics import Metrics
from rabbitsync.sidecar.subscriptions import Subscriptions
from rabbitsync.topology import naming
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
"""Seconds one turn of the loop waits for I/O; a delivery or a finished batch wakes it earlier."""
_BUSY_WAIT = 0.05
"""Seconds per turn while a publish or a database probe is awaited; a completion wakes it earlier."""
_STABLE_SESSION = 10.0
"""Seconds a session must last before the redial backoff starts over."""
_PAUSE_INITIAL = 0.5
"""Seconds before the database is first asked again after it failed; doubles up to the reconnect cap."""
_CHECK_INTERVAL = 1.0
"""Seconds between a lane's checks of its database connection (closed by the server, too old)."""


@dataclass(frozen=True)
class Delivery:
    spec: ConsumerSpec
    message: IncomingMessage
    consumer: int
    """Which ``consume`` of the session it came from: a channel number is reused after a queue is
    cancelled and consumed again, and a late result must never ack the new channel's tag."""


@dataclass(frozen=True)
class Work:
    """An admitted delivery on its way through a lane."""

    delivery: Delivery
    event: CloudEvent
    headers: dict[str, Any]
    """The headers its retry or dead-letter copy carries (the verified publisher among them)."""


Result = Outcome | BaseException


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
        apply_event: Callable[[CloudEvent], Outcome] | None = None,
    ) -> None:
        self._settings = settings
        self._specs = specs
        self._publisher = publisher
        self._metrics = metrics
        self._state = state
        # The settings are read once for the process, not again for every event.
        self._apply_event = apply_event or partial(apply, settings=settings)
        # Built now so that a malformed URL stops the sidecar at start instead of being redialled.
        self._endpoint = connection.endpoint(settings)
        # Parsed once: every delivery's trust check compares against it.
        self._own_user = self._endpoint.username
        # From the origin, which refuses an empty cluster: without one, no exchange would be known
        # as the retries', and retries put in by anyone would be taken for events.
        self._retries = naming.retries_exchange(settings.origin.cluster)
        self._backoff = Backoff(initial=0.2, cap=settings.reconnect_max_delay)
        self._workers = _workers(settings.consume_workers)
        # Database probes and backfill confirmations: rare, and never behind a lane's batch.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rabbitsync-probe")
        self._stop = threading.Event()
        self._recovered_at = 0.0
        self._checked = threading.local()
        self._generations = itertools.count(1)
        self._consumers: dict[str, int] = {}
        """Queue -> its current ``consume`` of this session (:attr:`Delivery.consumer`)."""
        self._consumed = {spec.queue: metrics.consumed.labels(spec.queue) for spec in specs}
        metrics.handler_in_flight.set_function(state.handler_age)

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; the batches in flight are finished and acked first."""
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
        acks = Acks()
        self._consumers.clear()
        with open_session(
            self._endpoint,
            name=connection.connection_name(self._settings, "sidecar"),
            timeouts=connection.timeouts(self._settings),
        ) as session:
            lanes: Lanes[Work, Result] = Lanes(
                self._workers, self._run, batch=_batch_size, wake=session.wake, finish=connections.close_all
            )
            # Deliveries still buffered or waiting in a lane when the session ends were never
            # acked: closing hands them back to the queue.
            stable_at = time.monotonic() + _STABLE_SESSION
            try:
                while not stop.is_set():
                    self._state.turn()
                    self._subscribe(session, subscriptions, buffer, lanes, acks)
                    if stable_at and time.monotonic() >= stable_at:
                        self._backoff.reset()
                        stable_at = 0.0
                    self._collect(session, lanes, acks)
                    self._dispatch(session, buffer, lanes, acks)
                    self._state.handler_started = lanes.oldest_start()
                    session.pump(_IDLE_WAIT)
                log.info("stopping: finishing the batches in flight, then closing the connection")
                self._finish(session, lanes, acks)
            finally:
                self._state.consuming = False
                for spec in self._specs:
                    self._metrics.subscription_consuming.labels(spec.queue).set(0)
                self._close(lanes)

    def _finish(self, session: Session, lanes: Lanes[Work, Result], acks: Acks) -> None:
        """A graceful stop: what is being applied is committed and acked; what waits goes back."""
        lanes.discard(lambda _work: False)
        while lanes.running():
            self._state.turn()
            self._state.handler_started = lanes.oldest_start()
            session.pump(_BUSY_WAIT)
        self._collect(session, lanes, acks)

    def _close(self, lanes: Lanes[Work, Result]) -> None:
        """Wait for the batches in flight (an entity's next event must not overtake them), serving liveness."""
        closing = threading.Thread(target=lanes.close, name="rabbitsync-lanes-close", daemon=True)
        closing.start()
        while closing.is_alive():
            self._state.turn()
            self._state.handler_started = lanes.oldest_start()
            closing.join(_IDLE_WAIT)
        self._state.handler_started = None

    def _subscribe(
        self,
        session: Session,
        subscriptions: Subscriptions,
        buffer: collections.deque[Delivery],
        lanes: Lanes[Work, Result],
        acks: Acks,
    ) -> None:
        """Stop the queues the broker cancelled; (re)start those due. Others are left alone."""
        for queue, why in session.cancelled_queues().items():
            session.stop(queue)
            # Their unacked deliveries went back with the channel: acking them is no longer possible.
            kept = [d for d in buffer if d.spec.queue != queue]
            buffer.clear()
            buffer.extend(kept)
            lanes.discard(partial(_not_of, queue))
            acks.forget(self._consumers.pop(queue, 0))
            self._down(subscriptions, queue, f"consumer cancelled by the broker: {why}")
        for spec in subscriptions.due():
            consumer = next(self._generations)
            try:
                session.consume(spec.queue, prefetch=spec.prefetch, deliver=partial(_buffer, buffer, spec, consumer))
            except (NotFound, AccessRefused) as e:  # that channel only: the connection lives on
                self._down(subscriptions, spec.queue, str(e))
                continue
            subscriptions.up(spec.queue)
            self._consumers[spec.queue] = consumer
            self._metrics.subscription_consuming.labels(spec.queue).set(1)
            log.info("consuming", extra={"queue": spec.queue})
        self._state.consuming = subscriptions.all_up()

    def _down(self, subscriptions: Subscriptions, queue: str, why: str) -> None:
        delay = subscriptions.down(queue)
        self._metrics.subscription_consuming.labels(queue).set(0)
        log.warning(
            "queue not consumed, trying again later", extra={"queue": queue, "error": why, "delay_s": round(delay, 2)}
        )

    # -- deliveries in -----------------------------------------------------------------------------

    def _dispatch(
        self, session: Session, buffer: collections.deque[Delivery], lanes: Lanes[Work, Result], acks: Acks
    ) -> None:
        """Admit the buffered deliveries into their lanes; a backfill end marker waits for all before it."""
        while buffer:
            delivery = buffer[0]
            if backfill.is_end(delivery.message.headers):
                if not lanes.idle():
                    return
                buffer.popleft()
                self._end_backfill(session, delivery, acks)
                continue
            buffer.popleft()
            acks.received(delivery.consumer, delivery.message.tag)
            self._consumed[delivery.spec.queue].inc()
            work = self._admit(delivery)
            if isinstance(work, Work):
                lanes.put(work.event.subject or work.event.id, work)
            else:
                self._reroute(session, delivery, work, acks)

    def _admit(self, delivery: Delivery) -> Work | routing.Action:
        """The event with its headers, if it may be applied; otherwise where the delivery goes, at once."""
        spec, message = delivery.spec, delivery.message
        token = current_event_id.set(message.message_id)
        try:
            publisher = vouched_publisher(message.user_id, message.headers, self._own_user)
            # Every copy we publish (retry, dead letter) carries the publisher we verified, never a claim.
            headers = with_publisher(message.headers, publisher)
            try:
                trust.route(message.exchange, message.user_id, self._own_user, retries=self._retries)
                admission.check(message, max_body_bytes=self._settings.max_body_bytes)
                event = decode(message.body)
                trust.check(event, publisher, events=spec.events, namespace=self._settings.namespace)
                backfill.check_addressed(
                    event, message.routing_key, namespace=self._settings.namespace, queue=spec.queue
                )
            except InvalidEvent as e:
                log.error("poison message: not a valid event", extra={"error": str(e)})
                return routing.poison(spec, headers, e)
            except (trust.Untrusted, admission.Refused) as e:
                log.error("refused: not applied", extra={"type": message.type, "reason": e.reason, "error": str(e)})
                return routing.poison(spec, headers, e, reason=e.reason)
            return Work(delivery, event, headers)
        finally:
            current_event_id.reset(token)

    # -- in a lane ---------------------------------------------------------------------------------

    def _run(self, items: list[Work], tick: Callable[[], None]) -> tuple[list[Result], BaseException | None]:
        """Apply ``items`` (on a lane's thread): one result each, up to an outage that stops the lane."""
        started = time.monotonic()
        if started - getattr(self._checked, "at", 0.0) > _CHECK_INTERVAL:
            # Drop connections the database closed meanwhile or that outlived CONN_MAX_AGE (Django's
            # per-request check); per event it reopened SQLite every time.
            close_old_connections()
            self._checked.at = started
        if len(items) > 1:
            try:
                results = inbox.apply_many(
                    [work.event for work in items],
                    settings=self._settings,
                    fatal=outages.unavailable,
                    before_each=partial(_started, tick),
                    apply_one=self._apply_event,
                )
            except BaseException as error:
                # The batch as a whole failed (its commit, or an outage-like error of one handler):
                # one by one, so that only the event at fault spends an attempt or stops the lane.
                close_old_connections()  # one left broken by the failure is replaced, not reused
                log.warning("batch failed as a whole, applying its events one by one", extra={"error": repr(error)})
            else:
                self._timed(items, started)
                if any(isinstance(result, BaseException) for result in results):
                    close_old_connections()
                return [_handlers(result) for result in results], None
        return self._one_by_one(items, tick)

    def _timed(self, items: list[Work], started: float) -> None:
        each = (time.monotonic() - started) / len(items)
        for work in items:
            self._metrics.handler_seconds.labels(work.event.type).observe(each)

    def _one_by_one(self, items: list[Work], tick: Callable[[], None]) -> tuple[list[Result], BaseException | None]:
        results: list[Result] = []
        for work in items:
            _started(tick, work.event)
            started = time.monotonic()
            try:
                results.append(self._apply_event(work.event))
                self._timed([work], started)
            except BaseException as error:  # the handler's failure, whatever it is
                if outages.unavailable(error):
                    close_old_connections()  # one left broken by the failure is replaced, not reused
                    return results, error
                results.append(_handlers(error))
                close_old_connections()
        return results, None

    # -- results out -------------------------------------------------------------------------------

    def _collect(self, session: Session, lanes: Lanes[Work, Result], acks: Acks) -> None:
        """Ack what the lanes committed, reroute what failed, pause on an outage."""
        for batch in lanes.finished():
            self._settle(session, batch, acks)
            if batch.outage is not None and not self._outage(session, batch, lanes, acks):
                return

    def _settle(self, session: Session, batch: Finished[Work, Result], acks: Acks) -> None:
        committed: dict[int, tuple[Delivery, list[int]]] = {}
        settled: list[tuple[Outcome, Work]] = []
        for work, result in zip(batch.items, batch.results, strict=True):
            delivery = work.delivery
            if isinstance(result, Outcome):
                committed.setdefault(delivery.consumer, (delivery, []))[1].append(delivery.message.tag)
                settled.append((result, work))
            elif acks.knows(delivery.consumer):  # else its channel is gone: it comes back by itself
                self._reroute(session, delivery, self._failed(work, result), acks)
        for first, tags in committed.values():
            self._ack(session, first, tags, acks)
        # Counted once acked: a trace record says what happened, not what was attempted.
        for outcome, work in settled:
            self._count(outcome, work.event, work.delivery.spec.queue)

    def _outage(self, session: Session, batch: Finished[Work, Result], lanes: Lanes[Work, Result], acks: Acks) -> bool:
        """A lane met an unreachable database; whether to go on (``False``: asked to stop meanwhile)."""
        assert batch.outage is not None
        if batch.at <= self._recovered_at:  # met during the outage already waited out
            lanes.resume(batch.lane)
            return True
        resume = self._pause(session, batch.outage)
        if resume is _Resume.STOP:
            return False
        if resume is _Resume.RETRY:
            self._recovered_at = time.monotonic()
            lanes.resume(batch.lane)
        else:
            work = lanes.drop_head(batch.lane)
            self._reroute(session, work.delivery, self._failed(work, batch.outage), acks)
        return True

    def _failed(self, work: Work, error: BaseException) -> routing.Action:
        spec, event, headers = work.delivery.spec, work.event, work.headers
        token = current_event_id.set(event.id)
        try:
            if isinstance(error, NoHandler | Reject):
                log.error("poison message: no retry can apply it", extra={"type": event.type, "error": str(error)})
                return routing.poison(spec, headers, error)
            # the handler's failure, whatever it is, is the event's, not ours
            log.warning(
                "handler failed",
                extra={"type": event.type, "attempt": routing.attempt_of(headers), "error": repr(error)},
            )
            return routing.after_failure(spec, headers, error)
        finally:
            current_event_id.reset(token)

    def _end_backfill(self, session: Session, delivery: Delivery, acks: Acks) -> None:
        """A run's end marker: acked once the whole run is applied, retried until then."""
        spec, message = delivery.spec, delivery.message
        acks.received(delivery.consumer, message.tag)
        publisher = vouched_publisher(message.user_id, message.headers, self._own_user)
        headers = with_publisher(message.headers, publisher)
        try:
            trust.route(message.exchange, message.user_id, self._own_user, retries=self._retries)
            end = backfill.verify_end(message.body, publisher, namespace=self._settings.namespace)
        except trust.Untrusted as e:
            log.error("refused backfill end marker", extra={"reason": e.reason, "error": str(e)})
            self._reroute(session, delivery, routing.poison(spec, headers, e, reason=e.reason), acks)
            return
        except InvalidEvent as e:
            log.error("poison message: not a backfill end marker", extra={"error": str(e)})
            self._reroute(session, delivery, routing.poison(spec, headers, e), acks)
            return
        future = self._off_thread(session, partial(self._in_worker, backfill.confirm_complete, end))
        try:
            applied = future.result()
        except backfill.Incomplete as e:
            log.info("backfill not complete yet", extra={"run": end.run, "error": str(e)})
            self._report_backfill(session, backfill.report(spec.queue, end, e.applied))
            self._reroute(session, delivery, routing.after_failure(spec, headers, e), acks)
            return
        self._report_backfill(session, backfill.report(spec.queue, end, applied))
        self._ack(session, delivery, [message.tag], acks)
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

    def _off_thread(self, session: Session, fn: Callable[[], Any]) -> Future[Any]:
        """Run ``fn`` on the probe thread, serving the connection until it is done."""
        future = self._worker.submit(contextvars.copy_context().run, fn)
        # Interrupts the pump on the I/O thread so the answer is read at once.
        future.add_done_callback(lambda _future: session.wake())
        self._pump(session, future.done)
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
        # One line per event is kept (it is how an event is traced through a service): the profile
        # puts it under 1 % of the sidecar's time, far behind what the lanes removed.
        extra = {"type": event.type, "event_id": event.id}
        if outcome is Outcome.APPLIED:
            self._metrics.applied.labels(event.type).inc()
            log.info("applied", extra=extra)
        elif outcome is Outcome.DUPLICATE:
            self._metrics.duplicates.inc()
            log.info("duplicate skipped", extra=extra)
        else:
            self._metrics.own.inc()
            log.debug("own event skipped", extra=extra)

    def _ack(self, session: Session, delivery: Delivery, tags: list[int], acks: Acks) -> None:
        """Ack ``tags`` of ``delivery``'s consumer: runs of settled deliveries with one ``multiple`` ack."""
        for tag, multiple in acks.settle(delivery.consumer, tags):
            session.ack(tag, delivery.message.channel, multiple=multiple)

    def _reroute(self, session: Session, delivery: Delivery, action: routing.Action, acks: Acks) -> None:
        """Publish the copy (confirmed) to its delay exchange or dead-letter queue, then ack the original."""
        spec, message = delivery.spec, delivery.message
        if isinstance(action, routing.Discard):
            log.error("dropping failed delivery: dead-lettering is off", extra={"reason": action.reason})
            self._metrics.discarded.labels(spec.queue).inc()
            self._ack(session, delivery, [message.tag], acks)
            return
        # Right after a broker hiccup the publisher may still be redialling: give it the time a
        # confirm may take rather than failing the session and running the handler once more.
        self._pump(session, self._publisher.ready, deadline=self._settings.confirm_timeout)
        if isinstance(action, routing.Retry):
            copy = message.copy_to(action.routing_key, action.headers, exchange=action.exchange)
        else:
            copy = message.copy_to(action.queue, action.headers)
        handle = self._publisher.submit([copy])
        self._pump(session, handle.done, deadline=self._settings.confirm_timeout)
        handle.wait(0)  # raises BrokerError: the session ends, the original is redelivered later
        self._ack(session, delivery, [message.tag], acks)
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


def _buffer(buffer: collections.deque[Delivery], spec: ConsumerSpec, consumer: int, message: IncomingMessage) -> None:
    buffer.append(Delivery(spec, message, consumer))


def _not_of(queue: str, work: Work) -> bool:
    return work.delivery.spec.queue != queue


def _batch_size(work: Work) -> int:
    return work.delivery.spec.batch_size


def _started(tick: Callable[[], None], event: CloudEvent) -> None:
    """Before each handler run on a lane: its clock starts, its log lines carry its event's id."""
    tick()
    current_event_id.set(event.id)


def _handlers(result: Result) -> Result:
    """A ``BaseException`` that is not an ``Exception`` raised by a handler is still that handler's failure."""
    if isinstance(result, BaseException) and not isinstance(result, Exception):
        aborted = HandlerAborted(f"handler raised {type(result).__name__}: {result}")
        aborted.__cause__ = result
        return aborted
    return result


def _workers(wanted: int) -> int:
    """Lanes the database allows: SQLite has one writer, so more lanes would only queue on its lock."""
    vendor = connections[router.db_for_write(InboxMessage)].vendor
    if wanted > 1 and vendor == "sqlite":
        log.warning("CONSUME_WORKERS > 1 needs concurrent writers; SQLite has one: using 1", extra={"wanted": wanted})
        return 1
    return wanted
