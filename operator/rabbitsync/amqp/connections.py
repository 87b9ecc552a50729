"""The operator's AMQP connections: one long-lived connection per broker, shared by every reconcile.

A connection per reconcile made 1,000 subscriptions cost 1,000 handshakes in a burst, and the
broker timed some of them out (issue 11). Here each broker endpoint gets one connection, opened on
first use and kept. Each use first answers heartbeats (``ping``); a connection the broker dropped
while idle (a restart, missed heartbeats, a broker that force-closes idle connections) fails that
ping or the work itself, and is replaced once and the work run again: everything the admin does is
idempotent (declares, binds, deletes that tolerate "already gone"). A connection that fails fresh
is a real outage and raises.

pika's blocking connections are not thread-safe and kopf runs handlers on a thread pool: each
connection is used under its own lock, so topology changes to one broker are serialised (they are
rare once converged: a reconcile that finds nothing to change never opens AMQP). At most
``capacity`` endpoints are kept; a rotated admin password is a new endpoint, and the least recently
used connection is closed to make room.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from rabbitsync.transport import BrokerEndpoint, BrokerUnreachable, Declarations, Timeouts, declarations
from rabbitsync.transport import open_declarations as _open

T = TypeVar("T")
CONNECTION_NAME = "rabbitsync-operator"

Opener = Callable[[BrokerEndpoint, Timeouts], Declarations]


def open_declarations(endpoint: BrokerEndpoint, timeouts: Timeouts) -> Declarations:
    return _open(endpoint, name=CONNECTION_NAME, timeouts=timeouts)


class Connections(Protocol):
    def run(self, endpoint: BrokerEndpoint, timeouts: Timeouts, work: Callable[[Declarations], T]) -> T:
        """``work`` on a connection to ``endpoint``. Raises ``rabbitsync.transport.errors.BrokerError``."""
        ...


class OneShot:
    """A connection of its own for each ``run``: for the CLI and tests, which connect once anyway."""

    def run(self, endpoint: BrokerEndpoint, timeouts: Timeouts, work: Callable[[Declarations], T]) -> T:
        with declarations(endpoint, name=CONNECTION_NAME, timeouts=timeouts) as broker:
            return work(broker)


@dataclass
class _Slot:
    lock: threading.Lock = field(default_factory=threading.Lock)
    connection: Declarations | None = None


class ConnectionPool:
    """One kept connection per endpoint (see the module's docstring); ``close`` on operator shutdown."""

    def __init__(self, capacity: int = 32, opener: Opener = open_declarations) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._opener = opener
        self._lock = threading.Lock()
        self._slots: OrderedDict[BrokerEndpoint, _Slot] = OrderedDict()
        self.opened = 0
        """Connections opened so far (reconnects included): what the scale benchmark reports."""

    def run(self, endpoint: BrokerEndpoint, timeouts: Timeouts, work: Callable[[Declarations], T]) -> T:
        slot = self._slot(endpoint)
        with slot.lock:
            if slot.connection is not None:
                try:
                    slot.connection.ping()
                    return work(slot.connection)
                except BrokerUnreachable:
                    # Dropped while kept: replace it once. Anything else (404, 406, 403) is the work's.
                    slot.connection.close()
                    slot.connection = None
            slot.connection = self._opener(endpoint, timeouts)
            self.opened += 1
            try:
                return work(slot.connection)
            except BrokerUnreachable:
                slot.connection.close()
                slot.connection = None
                raise

    def close(self) -> None:
        """Close every connection; a later ``run`` opens a new one."""
        with self._lock:
            slots, self._slots = list(self._slots.values()), OrderedDict()
        for slot in slots:
            _close(slot)

    def _slot(self, endpoint: BrokerEndpoint) -> _Slot:
        evicted: list[_Slot] = []
        with self._lock:
            slot = self._slots.get(endpoint)
            if slot is None:
                slot = self._slots[endpoint] = _Slot()
            self._slots.move_to_end(endpoint)
            while len(self._slots) > self._capacity:
                evicted.append(self._slots.popitem(last=False)[1])
        for old in evicted:
            _close(old)
        return slot


def _close(slot: _Slot) -> None:
    # Waits for a run in progress on it to finish first.
    with slot.lock:
        if slot.connection is not None:
            slot.connection.close()
            slot.connection = None
