"""The outbox relay: moves committed outbox rows to the broker, at least once.

Two ways rows reach it. The fast path: ``publish()`` registers ``transaction.on_commit`` to hand
the new row's id to this process's relay thread, which sends it within milliseconds. The sweep:
every ``relay_sweep_interval`` the sidecar's relay claims *every* unsent, unleased row — by state,
never by an "id greater than the last one seen" watermark, because ids are allocated at insert
time and a transaction that commits late carries an id smaller than rows already sent.

Each round claims up to ``relay_batch_size`` rows under a lease (a short transaction), publishes
them all before waiting (pipelined confirms), and marks them sent only once every confirm is in.
A relay killed between the confirm and the mark leaves the lease to expire: the rows go out again,
and the consumers' inbox absorbs the duplicate.

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
from datetime import timedelta

from django.db import DatabaseError, close_old_connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from rabbitsync.backoff import Backoff
from rabbitsync.conventions import routing_key
from rabbitsync.django import connection
from rabbitsync.django.conf import Settings, get_settings
from rabbitsync.django.models import OutboxMessage
from rabbitsync.events import MessageProperties
from rabbitsync.transport import BrokerError, ConfirmedPublisher, OutgoingMessage

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(self, settings: Settings, *, sweep: bool, publisher: ConfirmedPublisher | None = None):
        self._settings = settings
        self._sweep = sweep
        self._publisher = publisher or connection.publisher(settings, role="relay")
        self._pending: set[int] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent_total = 0

    def enable_sweep(self) -> None:
        self._sweep = True
        self._wake.set()

    def notify(self, ids: Iterable[int]) -> None:
        """Rows just committed: send them now."""
        with self._lock:
            self._pending.update(ids)
        self._wake.set()

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
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._publisher.close()

    def drain(self, ids: set[int] | None = None) -> int:
        """Send claimable rows (all, or only ``ids``) until none is left; the number sent."""
        sent = 0
        while True:
            rows = self.claim(ids)
            if not rows:
                return sent
            self.send(rows)
            self.mark_sent(rows)
            sent += len(rows)
            if ids is not None:
                ids = ids - {row.pk for row in rows}

    def send(self, rows: list[OutboxMessage]) -> None:
        """Publish claimed rows, pipelined, and wait for every confirm; releases the lease on failure."""
        try:
            self._publisher.publish([self._message(row) for row in rows], timeout=self._settings.confirm_timeout)
        except BrokerError:
            self._release(rows)
            raise
        self.sent_total += len(rows)

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
            sweeping = self._sweep and time.monotonic() >= next_sweep
            try:
                if ids:
                    self.drain(ids)
                if sweeping:
                    self.drain(None)
                    next_sweep = time.monotonic() + self._settings.relay_sweep_interval
                backoff.reset()
            except (BrokerError, DatabaseError) as e:
                with self._lock:
                    self._pending.update(ids)
                delay = backoff.next()
                log.warning("outbox relay failed, retrying", extra={"error": str(e), "delay_s": round(delay, 2)})
                self._stop.wait(delay)
                self._wake.set()
            finally:
                close_old_connections()

    def claim(self, ids: set[int] | None = None) -> list[OutboxMessage]:
        """Lease up to a batch of unsent rows (all, or among ``ids``) to this relay, oldest first."""
        if ids is not None and not ids:
            return []
        now = timezone.now()
        token = uuid.uuid4().hex
        claimable = OutboxMessage.objects.filter(sent_at__isnull=True).filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=now)
        )
        if ids is not None:
            claimable = claimable.filter(pk__in=sorted(ids)[: self._settings.relay_batch_size])
        with transaction.atomic():
            pks = list(claimable.order_by("pk").values_list("pk", flat=True)[: self._settings.relay_batch_size])
            if not pks:
                return []
            # The lease conditions are repeated in the UPDATE so a concurrent relay cannot claim too.
            claimable.filter(pk__in=pks).update(
                lease_owner=token,
                lease_until=now + timedelta(seconds=self._settings.relay_lease),
                publish_attempts=F("publish_attempts") + 1,
            )
        return list(OutboxMessage.objects.filter(lease_owner=token, sent_at__isnull=True).order_by("pk"))

    def _release(self, rows: list[OutboxMessage]) -> None:
        try:
            OutboxMessage.objects.filter(pk__in=[r.pk for r in rows], lease_owner=rows[0].lease_owner).update(
                lease_owner="", lease_until=None
            )
        except DatabaseError:  # the lease will expire on its own
            log.warning("could not release outbox lease", exc_info=True)

    def mark_sent(self, rows: list[OutboxMessage]) -> None:
        """Only after the confirms: a crash before this line means a resend, never a loss."""
        OutboxMessage.objects.filter(pk__in=[r.pk for r in rows], lease_owner=rows[0].lease_owner).update(
            sent_at=timezone.now(), lease_owner="", lease_until=None
        )

    def _message(self, row: OutboxMessage) -> OutgoingMessage:
        return OutgoingMessage(
            exchange=self._settings.exchange,
            routing_key=routing_key(self._settings.namespace, row.type),
            body=bytes(row.body),
            properties=MessageProperties(
                message_id=row.event_id, type=row.type, timestamp=int(row.created_at.timestamp())
            ),
        )


def backlog() -> int:
    """Outbox rows not yet confirmed by the broker."""
    return OutboxMessage.objects.filter(sent_at__isnull=True).count()


_local: OutboxRelay | None = None
_local_pid: int | None = None
_local_lock = threading.Lock()


def local_relay(*, sweep: bool = False) -> OutboxRelay:
    """This process's relay, started on first use (never at import, and again after a fork)."""
    global _local, _local_pid
    with _local_lock:
        if _local is None or _local_pid != os.getpid():
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


def wake(pk: int) -> None:
    """``on_commit`` hook of ``publish()``."""
    local_relay().notify([pk])
