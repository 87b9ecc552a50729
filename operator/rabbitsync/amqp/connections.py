"""The operator's AMQP connections: one long-lived connection per broker, shared by every reconcile.

A connection per reconcile made 1,000 subscriptions cost 1,000 handshakes in a burst, and the
broker timed some of them out (issue 11). Here each broker endpoint gets one connection, opened on
first use and kept. Each use first answers heartbeats (``ping``); a connection the broker dropped
while idle (a restart, missed heartbeats, a broker that force-closes idle connections) fails that
ping or the work itself, and is replaced once and the work run again: everything the admin does is
idempotent (declares, binds, deletes that tolerate "already gone"). A connection that fails fresh
is a real outage and raises.

pika's blocking connections are not thread-safe and kopf runs handlers on a thread pool: a
connection is used by one thread at a time. ``per_broker`` (default 1) bounds how many are kept per
broker: with one, topology changes to a broker are serialised, which is what the issue asked for and
enough once converged (a reconcile that finds nothing to change never opens AMQP); a few more let a
burst of new subscriptions declare their quorum queues in parallel (``RABBITSYNC_BROKER_CONNECTIONS``)
while still never making a handshake per reconcile. At most ``capacity`` endpoints are kept; a
rotated admin password is a new endpoint, and the least recently used broker's connections are
closed to make room.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
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


class _Kept:
    """The kept connections of one broker: at most ``size`` in use at once, idle ones reused."""

    def __init__(self, size: int) -> None:
        self.permits = threading.BoundedSemaphore(size)
        self.lock = threading.Lock()
        self.idle: list[Declarations] = []
        self.retired = False

    def take(self) -> Declarations | None:
        with self.lock:
            return self.idle.pop() if self.idle else None

    def give_back(self, connection: Declarations) -> None:
        with self.lock:
            if not self.retired:
                self.idle.append(connection)
                return
        connection.close()

    def retire(self) -> None:
        """Close the idle connections now, those in use when they come back."""
        with self.lock:
            self.retired, idle, self.idle = True, self.idle, []
        for connection in idle:
            connection.close()


class ConnectionPool:
    """Kept connections per endpoint (see the module's docstring); ``close`` on operator shutdown."""

    def __init__(self, per_broker: int = 1, capacity: int = 32, opener: Opener = open_declarations) -> None:
        if per_broker < 1 or capacity < 1:
            raise ValueError("per_broker and capacity must be at least 1")
        self._per_broker = per_broker
        self._capacity = capacity
        self._opener = opener
        self._lock = threading.Lock()
        self._brokers: OrderedDict[BrokerEndpoint, _Kept] = OrderedDict()
        self.opened = 0
        """Connections opened so far (reconnects included): what the scale benchmark reports."""

    def run(self, endpoint: BrokerEndpoint, timeouts: Timeouts, work: Callable[[Declarations], T]) -> T:
        kept = self._kept(endpoint)
        with kept.permits:
            connection = kept.take()
            if connection is not None:
                try:
                    return _attempt(kept, connection, work, ping=True)
                except BrokerUnreachable:
                    pass  # dropped while kept: replaced once, below
            return _attempt(kept, self._open(endpoint, timeouts), work, ping=False)

    def close(self) -> None:
        """Close every connection; a later ``run`` opens new ones."""
        with self._lock:
            brokers, self._brokers = list(self._brokers.values()), OrderedDict()
        for kept in brokers:
            kept.retire()

    def _open(self, endpoint: BrokerEndpoint, timeouts: Timeouts) -> Declarations:
        connection = self._opener(endpoint, timeouts)
        with self._lock:
            self.opened += 1
        return connection

    def _kept(self, endpoint: BrokerEndpoint) -> _Kept:
        evicted: list[_Kept] = []
        with self._lock:
            kept = self._brokers.get(endpoint)
            if kept is None:
                kept = self._brokers[endpoint] = _Kept(self._per_broker)
            self._brokers.move_to_end(endpoint)
            while len(self._brokers) > self._capacity:
                evicted.append(self._brokers.popitem(last=False)[1])
        for old in evicted:
            old.retire()
        return kept


def _attempt(kept: _Kept, connection: Declarations, work: Callable[[Declarations], T], *, ping: bool) -> T:
    """``work`` on ``connection``; a connection that proved dead is closed, any other is kept."""
    try:
        if ping:
            connection.ping()
        result = work(connection)
    except BrokerUnreachable:
        connection.close()
        raise
    except BaseException:  # the work's own error (404, 406, 403): the connection is fine
        kept.give_back(connection)
        raise
    kept.give_back(connection)
    return result
