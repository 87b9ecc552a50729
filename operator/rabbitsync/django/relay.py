"""The outbox relay: moves committed outbox rows to the broker, at least once.

Two ways rows reach it. The fast path: ``publish()`` inserts the row already leased to this
process's relay (:attr:`OutboxRelay.token`) and registers ``transaction.on_commit`` to hand the row
itself to the relay thread, which publishes it at once: no claim transaction, no read, on the way
from the commit to the broker (the claim was the largest step of that way, see ``bench/relay.py``).
A row whose birth lease no longer covers a whole publish (its transaction ran long) is claimed as
any other. A web process killed between its commit and the send leaves the row to the sweep once
the lease expires (``relay_lease``); a stopping relay releases the rows it holds at once. The sweep:
every ``relay_sweep_interval`` the sidecar's relay claims *every* unsent, unleased row — by state,
never by an "id greater than the last one seen" watermark, because ids are allocated at insert
time and a transaction that commits late carries an id smaller than rows already sent.

Each round claims up to ``relay_batch_size`` rows under a lease (a short transaction), publishes
them all before waiting (pipelined confirms), and marks sent the rows whose confirm is in.
A relay killed between the confirm and the mark leaves the lease to expire: the rows go out again,
and the consumers' inbox absorbs the duplicate. The lease outlasts the worst-case publish of a
batch (``relay_lease`` is validated against ``confirm_timeout``), so that never happens merely
because the broker is slow.

Nothing blocks the outbox: a row the broker refuses is set back or parked on its own
(:mod:`rabbitsync.django.setbacks`) and the rows behind it go on. Events are published
``mandatory``: the shared exchange's alternate exchange keeps what no subscription takes, so a
``basic.return`` means that net is missing, and the row is kept and retried instead of marked sent.

The thread survives anything: an error it did not foresee (Django's ``InterfaceError`` is not a
``DatabaseError``) is logged and backed off like a broker outage. Row ids waiting for the fast
path are bounded (``relay_pending_max``); past it the relay forgets them and sweeps the whole outbox,
its own leased rows included (a regular sweep leaves those to the fast path).

The routing key is the event type prefixed by this service's namespace
(:func:`rabbitsync.conventions.routing_key`), so only subscribers of the same namespace, in either
cluster, receive it; the AMQP ``type`` stays the bare event type.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import DatabaseError, close_old_connections, connections
from django.utils import timezone

from rabbitsync.backoff import Backoff
from rabbitsync.conventions import routing_key
from rabbitsync.django import connection, leases, setbacks, tracelog
from rabbitsync.django.conf import LEASE_MARGIN, Settings, get_settings
from rabbitsync.django.models import OutboxMessage
from rabbitsync.events import MessageProperties, trace
from rabbitsync.transport import BrokerError, BrokerUnreachable, ConfirmedPublisher, OutgoingMessage, Unroutable

log = logging.getLogger(__name__)


@dataclass
class Round:
    """What one publish of claimed rows came to."""

    confirmed: list[OutboxMessage] = field(default_factory=list)
    refused: list[tuple[OutboxMessage, BrokerError]] = field(default_factory=list)
    away: list[tuple[OutboxMessage, BrokerError]] = field(default_factory=list)
    """Not settled because the broker is away (connection lost, confirms overdue): no fault of theirs."""


class OutboxRelay:
    def __init__(self, settings: Settings, *, sweep: bool, publisher: ConfirmedPublisher | None = None):
        self._settings = settings
        self._sweep = sweep
        self._publisher = publisher or connection.publisher(settings, role="relay")
        self.token = uuid.uuid4().hex
        """The lease owner of the rows born leased to this relay (and of nothing else)."""
        self._pending: set[int] = set()
        self._fresh: dict[int, OutboxMessage] = {}
        """Rows handed over by ``publish()``'s commit hook, still leased to :attr:`token`."""
        self._overflowed = False
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent_total = 0
        self.returned_total = 0
        """Publishes the broker returned as unroutable (no alternate exchange in place): each kept the row."""

    def enable_sweep(self) -> None:
        self._sweep = True
        self._wake.set()

    def notify(self, ids: Iterable[int]) -> None:
        """Rows just committed: send them now."""
        self._remember(ids)
        self._wake.set()

    def hand_over(self, row: OutboxMessage) -> None:
        """A row born leased to this relay was committed: publish it now, without claiming it."""
        with self._lock:
            if not self._overflowed:
                self._fresh[row.pk] = row
            self._bound()
        self._wake.set()

    def _remember(self, ids: Iterable[int]) -> None:
        with self._lock:
            if not self._overflowed:
                self._pending.update(ids)
            self._bound()

    def _bound(self) -> None:
        if len(self._pending) + len(self._fresh) > self._settings.relay_pending_max:
            # Forget them all and sweep everything once instead: the rows are in the table anyway.
            self._pending.clear()
            self._fresh.clear()
            self._overflowed = True

    def start(self) -> OutboxRelay:
        if self._thread is None:
            self._publisher.start()
            self._thread = threading.Thread(target=self._run, name="rabbitsync-relay", daemon=True)
            self._thread.start()
        return self

    def alive(self) -> bool:
        """The relay thread runs (started and not dead of an error it could not handle)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread; rows handed over but not sent are released for any relay's sweep."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._publisher.close()
        with self._lock:
            unsent, self._fresh = list(self._fresh.values()), {}
        try:
            leases.release(unsent)
        except DatabaseError as e:  # their lease expires on its own: a delay, never a loss
            log.warning("could not release the relay's rows", extra={"error": str(e)})

    def drain(self, ids: set[int] | None = None, *, own: bool = False) -> int:
        """Send claimable rows (all, or only ``ids``) until none is left; the number sent.

        Rows leased to this relay's :attr:`token` are taken too when asked by id or with ``own``;
        a plain sweep leaves them to the fast path, which may be about to send them.

        Raises the broker's error when it is away (after marking what it did confirm).
        """
        sent = 0
        while True:
            rows = self.claim(ids, own=own or ids is not None)
            if not rows:
                return sent
            sent += self._deliver(rows)
            if ids is not None:
                ids = ids - {row.pk for row in rows}

    def _deliver(self, rows: list[OutboxMessage]) -> int:
        """Send rows this relay holds and mark the confirmed ones; the number sent. Raises if the broker is away."""
        result = self.send(rows)
        self.mark_sent(result.confirmed)
        if result.away:
            raise result.away[0][1]
        return len(result.confirmed)

    def _send_fresh(self, rows: list[OutboxMessage]) -> int:
        """Send rows born leased to this relay; those whose lease would not outlast a publish are claimed first."""
        safe_until = timezone.now() + timedelta(seconds=self._settings.confirm_timeout + LEASE_MARGIN)
        held = [row for row in rows if row.lease_until and row.lease_until > safe_until]
        stale = {row.pk for row in rows} - {row.pk for row in held}
        size = self._settings.relay_batch_size
        sent = sum(self._deliver(held[start : start + size]) for start in range(0, len(held), size))
        return sent + (self.drain(stale) if stale else 0)

    def send(self, rows: list[OutboxMessage]) -> Round:
        """Publish claimed rows, pipelined, and wait for their confirms; never marks them sent.

        Oversized rows are parked unsent; refused rows are set back or parked; rows the broker could
        not settle because it is away are released at no cost.
        """
        result = Round()
        sendable = [row for row in rows if not self._parked_for_size(row)]
        self._publish(sendable, result)
        if len(sendable) > 1 and result.refused:
            # A channel closed on one message fails all of its batch: try each alone to find the culprit.
            suspects, result.refused = [row for row, _ in result.refused], []
            for row in suspects:
                leases.renew([row], self._settings.relay_lease)  # each publish gets a whole lease
                self._publish([row], result)
        for row, error in result.refused:
            self._set_back(row, error)
        leases.release([row for row, _ in result.away])
        self.sent_total += len(result.confirmed)
        for row in result.confirmed:
            tracelog.local().record(trace.PUBLISHED, row.event_id, type=row.type, event_time=row.created_at)
        return result

    def _publish(self, rows: list[OutboxMessage], result: Round) -> None:
        if not rows:
            return
        outcomes = self._publisher.publish_each(
            [self._message(row) for row in rows], timeout=self._settings.confirm_timeout
        )
        for row, error in zip(rows, outcomes, strict=True):
            if error is None:
                result.confirmed.append(row)
            elif isinstance(error, BrokerUnreachable):
                result.away.append((row, error))
            else:
                result.refused.append((row, error))

    def _parked_for_size(self, row: OutboxMessage) -> bool:
        setback = setbacks.too_large(len(row.body), self._settings.relay_max_message_bytes)
        if setback is None:
            return False
        leases.set_back(row, setback, attempt=False)
        log.error("outbox row parked", extra={"event_id": row.event_id, "reason": setback.reason})
        return True

    def _set_back(self, row: OutboxMessage, error: BrokerError) -> None:
        setback = setbacks.after_refusal(
            row.publish_attempts + 1,
            error,
            max_attempts=self._settings.relay_max_attempts,
            max_delay=self._settings.relay_retry_max_delay,
        )
        leases.set_back(row, setback)
        if isinstance(error, Unroutable):
            self.returned_total += 1
            log.warning("event returned unroutable: kept", extra={"event_id": row.event_id, "type": row.type})
        elif setback.park:
            log.error("outbox row parked", extra={"event_id": row.event_id, "reason": setback.reason})
        else:
            log.warning("outbox row refused", extra={"event_id": row.event_id, "reason": setback.reason})

    def _run(self) -> None:
        backoff = Backoff(initial=0.2, cap=self._settings.reconnect_max_delay)
        next_sweep = 0.0
        while not self._stop.is_set():
            timeout = max(0.0, next_sweep - time.monotonic()) if self._sweep else None
            self._wake.wait(timeout)
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._lock:
                ids, self._pending = self._pending, set()
                fresh, self._fresh = list(self._fresh.values()), {}
                everything, self._overflowed = self._overflowed, False
            sweeping = everything or (self._sweep and time.monotonic() >= next_sweep)
            try:
                self._round(ids, fresh, sweeping, everything)
                if sweeping:
                    next_sweep = time.monotonic() + self._settings.relay_sweep_interval
                backoff.reset()
            except Exception as e:
                # Handed-over rows that failed are claimed by id next time (the claim takes our own leases).
                self._after_failure(e, ids | {row.pk for row in fresh}, everything, backoff.next())
            finally:
                close_old_connections()

    def _round(self, ids: set[int], fresh: list[OutboxMessage], sweeping: bool, everything: bool) -> None:
        if fresh:
            self._send_fresh(fresh)
        if ids and not sweeping:
            self.drain(ids)
        if sweeping:
            # After an overflow the handed-over rows were forgotten: this sweep is their only way out.
            self.drain(None, own=everything)

    def _after_failure(self, error: Exception, ids: set[int], everything: bool, delay: float) -> None:
        if isinstance(error, BrokerError | DatabaseError):
            log.warning("outbox relay failed, retrying", extra={"error": str(error), "delay_s": round(delay, 2)})
        else:
            log.exception("outbox relay error, retrying", extra={"delay_s": round(delay, 2)})
        if not isinstance(error, BrokerError):
            # A connection in an unknown state (InterfaceError: already closed) must not be reused.
            connections.close_all()
        self._remember(ids)
        if everything:
            with self._lock:
                self._overflowed = True
        self._stop.wait(delay)
        self._wake.set()

    def claim(self, ids: set[int] | None = None, *, own: bool = False) -> list[OutboxMessage]:
        """Lease up to a batch of claimable rows (all, or among ``ids``) to this relay, oldest first;
        with ``own``, also the rows still leased to :attr:`token`."""
        mine = self.token if own else ""
        return leases.claim(self._settings.relay_batch_size, self._settings.relay_lease, ids, mine=mine)

    def mark_sent(self, rows: list[OutboxMessage]) -> None:
        leases.mark_sent(rows)

    def _message(self, row: OutboxMessage) -> OutgoingMessage:
        return OutgoingMessage(
            exchange=self._settings.exchange,
            routing_key=routing_key(self._settings.namespace, row.type),
            body=bytes(row.body),
            properties=MessageProperties(
                message_id=row.event_id, type=row.type, timestamp=int(row.created_at.timestamp())
            ),
            mandatory=True,
        )


def backlog() -> int:
    """Outbox rows still to be sent (parked ones excluded: see :func:`parked`)."""
    return leases.backlog()


def parked() -> int:
    """Outbox rows parked with a reason."""
    return leases.parked()


_local: OutboxRelay | None = None
_local_pid: int | None = None
_local_lock = threading.Lock()


def local_relay(*, sweep: bool = False) -> OutboxRelay:
    """This process's relay, started on first use (never at import, and again after a fork)."""
    global _local, _local_pid
    with _local_lock:
        if _local is None or _local_pid != os.getpid():
            tracelog.start(get_settings())  # the relay's records, and the sidecar's in a sidecar
            _local = OutboxRelay(get_settings(), sweep=sweep).start()
            _local_pid = os.getpid()
        elif sweep:
            _local.enable_sweep()
        return _local


def stop_local_relay() -> None:
    global _local
    with _local_lock:
        relay, _local = _local, None
    if relay is not None:
        relay.stop()
    tracelog.stop()
