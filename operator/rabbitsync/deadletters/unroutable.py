"""Counting and replaying the events the shared exchange could not route (its alternate exchange's queue).

The queue is :func:`rabbitsync.topology.naming.unroutable_name` of the exchange, filled by the
policy the operator applies (:mod:`rabbitsync.topology.unroutable`). A pass takes each message once
and settles it as the dead-letter passes do (:mod:`rabbitsync.deadletters.queue`): publish first,
ack after the broker's confirm, so a crash leaves an extra copy, never a loss, and no delivery is
ever counted against a quorum queue's delivery limit. A message not replayed goes back to the tail
as an identical copy, so the queue keeps its order.

A replay publishes to the exchange with the event's routing key (its source's namespace and its type,
:func:`rabbitsync.conventions.routing_key`: the only key its publisher's topic permission allows),
*as its original publisher*: the receiving sidecar believes an event only from the broker user of the
service its ``source`` names (``rabbitsync.sidecar.trust``), so the replay must log in with that
service's credentials (``publishers``). An event still without a subscriber comes back to this
queue through the alternate exchange: replaying twice is safe, the inbox applies an id once.

A copy put back carries the reader's ``user_id`` (the broker allows no other), so the original
publisher travels in the :data:`~rabbitsync.events.headers.PUBLISHER` header, believed only on a
message whose ``user_id`` is the reader's own: nobody else can publish as that user.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from rabbitsync.conventions import routing_key
from rabbitsync.deadletters.queue import Progress
from rabbitsync.events import EventError, decode
from rabbitsync.events.headers import vouched_publisher, with_publisher
from rabbitsync.topology.naming import unroutable_name
from rabbitsync.transport import (
    BrokerEndpoint,
    BrokerError,
    ConfirmedPublisher,
    IncomingMessage,
    OutgoingMessage,
    Timeouts,
    declarations,
    open_session,
)

CONNECTION_NAME = "rabbitsync-cli-unroutable"


@dataclass(frozen=True)
class Entry:
    """One unroutable event, as ``rabbitsync unroutable list`` shows it."""

    message_id: str | None
    type: str | None
    publisher: str | None
    """The broker-verified AMQP ``user_id`` of whoever published it."""
    routing_key: str | None
    """Where a replay sends it; ``None`` if the body is no event (it stays)."""


@dataclass
class Outcome:
    entries: list[Entry] = field(default_factory=list)
    replayed: list[Entry] = field(default_factory=list)
    failed: list[tuple[Entry, str]] = field(default_factory=list)


def describe(message: IncomingMessage, reader: str) -> Entry:
    """``message`` as listed; ``reader`` is the user this pass reads (and puts copies back) as."""
    try:
        event = decode(message.body)
        key: str | None = routing_key(event.origin.namespace, event.type)
    except (EventError, ValueError):
        key = None
    publisher = vouched_publisher(message.user_id, message.headers, reader)
    return Entry(message.message_id, message.type, publisher, key)


class UnroutableQueue:
    """The unroutable events of one exchange on one broker; each method is one pass on its own connection."""

    def __init__(self, endpoint: BrokerEndpoint, exchange: str, *, timeouts: Timeouts | None = None) -> None:
        self.endpoint = endpoint
        self.exchange = exchange
        self.queue = unroutable_name(exchange)
        self._timeouts = timeouts or Timeouts()

    def depth(self) -> int:
        with declarations(self.endpoint, name=CONNECTION_NAME, timeouts=self._timeouts) as broker:
            return broker.message_count(self.queue)

    def look(self, progress: Progress | None = None) -> Outcome:
        return self._pass(lambda _entry: False, {}, progress)

    def replay(
        self,
        select: Callable[[Entry], bool],
        publishers: Mapping[str, BrokerEndpoint],
        progress: Progress | None = None,
    ) -> Outcome:
        """Send the selected events back to the exchange, each as its publisher (``publishers`` by user name)."""
        return self._pass(select, publishers, progress)

    def _pass(
        self,
        select: Callable[[Entry], bool],
        publishers: Mapping[str, BrokerEndpoint],
        progress: Progress | None,
    ) -> Outcome:
        outcome = Outcome()
        count = self.depth()
        if count == 0:
            return outcome
        timeout = self._timeouts.operation_s
        opened: dict[str, ConfirmedPublisher] = {}

        def publisher(endpoint: BrokerEndpoint) -> ConfirmedPublisher:
            if endpoint.username not in opened:
                name = f"{CONNECTION_NAME}-{len(opened)}"
                opened[endpoint.username] = ConfirmedPublisher(endpoint, name=name, timeouts=self._timeouts).start()
            return opened[endpoint.username]

        try:
            with open_session(self.endpoint, name=CONNECTION_NAME, timeouts=self._timeouts) as session:
                for taken in range(1, count + 1):
                    message = session.get(self.queue)
                    if message is None:
                        break
                    self._settle(message, select, publishers, publisher, outcome, timeout)
                    session.ack(message.tag)
                    if progress is not None:
                        progress(taken, count)
        finally:
            for opened_publisher in opened.values():
                opened_publisher.close()
        return outcome

    def _settle(
        self,
        message: IncomingMessage,
        select: Callable[[Entry], bool],
        publishers: Mapping[str, BrokerEndpoint],
        publisher: Callable[[BrokerEndpoint], ConfirmedPublisher],
        outcome: Outcome,
        timeout: float,
    ) -> None:
        """Replay ``message`` or put its copy back at the tail; confirmed either way before the ack."""
        entry = describe(message, self.endpoint.username)
        outcome.entries.append(entry)
        if select(entry):
            why = self._replay(message, entry, publishers, publisher, timeout)
            if why is None:
                outcome.replayed.append(entry)
                return
            outcome.failed.append((entry, why))
        publisher(self.endpoint).publish(
            [message.copy_to(self.queue, with_publisher(message.headers, entry.publisher))], timeout
        )

    def _replay(
        self,
        message: IncomingMessage,
        entry: Entry,
        publishers: Mapping[str, BrokerEndpoint],
        publisher: Callable[[BrokerEndpoint], ConfirmedPublisher],
        timeout: float,
    ) -> str | None:
        """Why ``message`` could not be replayed, or ``None`` once the broker confirmed it."""
        if entry.routing_key is None:
            return "not a rabbitsync event: no routing key to send it with"
        endpoint = publishers.get(entry.publisher or "")
        if endpoint is None:
            return f"no credentials of its publisher {entry.publisher!r}: pass its broker URI"
        resend = OutgoingMessage(
            exchange=self.exchange,
            routing_key=entry.routing_key,
            body=message.body,
            properties=message.copy_to(self.queue, {}).properties,
            headers=with_publisher(message.headers, None) or None,
        )
        try:
            publisher(endpoint).publish([resend], timeout)
        except BrokerError as e:
            return str(e)
        return None
