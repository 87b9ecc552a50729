"""Looking at, replaying and purging one dead-letter queue without ever handing a message back.

Why no message is ever returned to the queue: a quorum queue counts every return of a message
(``basic.nack``/``basic.reject`` with requeue, or the channel closing on it) in ``x-delivery-count``
on RabbitMQ 3.x, and RabbitMQ 4.0-4.2 count every acquisition against a default delivery limit of 20
(4.3 stops counting an explicit ``basic.nack``, but not older brokers, and this CLI does not know
which it talks to). A DLQ has no dead-letter target of its own, so a message over the limit is
simply dropped: peeking with get-and-requeue, as ``rabbitsync dead-letters`` once did, could lose a
dead letter by listing it twenty times.

So every pass takes the messages it looks at and settles each one by publishing first and acking
after the broker's confirm: a look publishes an identical copy (fresh counters) to the tail of the
same DLQ, a replay publishes to the subscription's queue, a purge publishes nothing. After a look
the queue holds the same messages in the same order, none with a delivery counted. A crash between
a confirm and its ack leaves one extra copy, never a loss; replaying that copy too is harmless
because the consumer's inbox applies an event id once per service and cluster.

Only a pass that fails midway hands back what it holds, by closing its channel: at most one batch,
counted once. The one batch size bounds that exposure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rabbitsync.deadletters.letters import DeadLetter, describe, kept_headers, replay_headers
from rabbitsync.events.headers import vouched_publisher
from rabbitsync.transport import (
    BrokerEndpoint,
    BrokerUnreachable,
    ConfirmedPublisher,
    IncomingMessage,
    OutgoingMessage,
    PublishRejected,
    Timeouts,
    declarations,
    open_session,
)

CONNECTION_NAME = "rabbitsync-cli"
TIMEOUTS = Timeouts()
"""The short defaults: a person is waiting at the terminal, and a failure is better than a hang."""
BATCH = 50
"""Messages held unsettled at once; also the most a failed pass can hand back (and get counted)."""

Select = Callable[[DeadLetter], bool]
Progress = Callable[[int, int], None]


class Reader(Protocol):
    """The consuming side of a pass: :class:`rabbitsync.transport.Session` in production."""

    def get(self, queue: str) -> IncomingMessage | None: ...

    def ack(self, tag: int) -> None: ...


class Confirm(Protocol):
    def wait(self, timeout: float) -> None: ...


class Writer(Protocol):
    """The publishing side: :class:`rabbitsync.transport.ConfirmedPublisher` in production."""

    def submit(self, messages: Sequence[OutgoingMessage]) -> Confirm: ...


@dataclass
class PassResult:
    """What one pass over a DLQ saw and did."""

    letters: list[DeadLetter] = field(default_factory=list)
    """Every dead letter the pass looked at, in queue order."""
    messages: list[IncomingMessage] = field(default_factory=list)
    """The same, as they were on the broker (headers and body), for ``dlq show``."""
    replayed: list[DeadLetter] = field(default_factory=list)
    failed: list[tuple[DeadLetter, str]] = field(default_factory=list)
    """Selected for replay but refused by the broker (e.g. the subscription's queue is gone): kept."""
    purged: int = 0


@dataclass(frozen=True)
class _Plan:
    """Where one taken message goes: ``replay`` to its queue, else back to the DLQ unless purged."""

    message: IncomingMessage
    letter: DeadLetter
    publisher: str | None
    """Who published the original (:func:`~rabbitsync.events.headers.vouched_publisher`)."""
    replay: bool = False
    purge: bool = False


def run_pass(
    reader: Reader,
    writer: Writer,
    queue: str,
    count: int,
    *,
    replay: Select | None = None,
    purge: bool = False,
    progress: Progress | None = None,
    timeout: float = TIMEOUTS.operation_s,
    user: str | None = None,
) -> PassResult:
    """Take the ``count`` oldest messages of ``queue`` once each, settling every one as described above.

    ``user`` is the broker user the pass reads and writes as: only on copies it published itself is a
    message's publisher header believed (none: never), so nobody can forge one by putting a letter
    with that header in the DLQ and waiting for a replay.
    """
    result = PassResult()
    taken = 0
    while taken < count:
        batch: list[_Plan] = []
        while len(batch) < BATCH and taken < count:
            message = reader.get(queue)
            if message is None:
                break
            taken += 1
            letter = describe(message, queue)
            selected = replay is not None and replay(letter)
            if selected and not letter.queue:
                result.failed.append((letter, "no queue to send it back to (no header names one)"))
            publisher = vouched_publisher(message.user_id, message.headers, user)
            batch.append(_Plan(message, letter, publisher, replay=selected and bool(letter.queue), purge=purge))
        if not batch:
            break
        _settle(reader, writer, queue, batch, result, timeout)
        if progress is not None:
            progress(taken, count)
    return result


def _settle(reader: Reader, writer: Writer, queue: str, batch: list[_Plan], result: PassResult, timeout: float) -> None:
    """Publish the batch's copies, wait for every confirm, and only then ack the originals.

    A copy the broker does not confirm raises before any original of the batch is acked.
    """
    sent = [(plan, _send(writer, queue, plan)) for plan in batch]
    for plan, confirm in sent:
        result.letters.append(plan.letter)
        result.messages.append(plan.message)
        if confirm is None:
            result.purged += 1
        elif plan.replay:
            _confirm_replay(writer, queue, plan, confirm, result, timeout)
        else:
            confirm.wait(timeout)
    for plan in batch:
        reader.ack(plan.message.tag)


def _confirm_replay(
    writer: Writer, queue: str, plan: _Plan, confirm: Confirm, result: PassResult, timeout: float
) -> None:
    try:
        confirm.wait(timeout)
    except PublishRejected as e:
        # E.g. the subscription's queue is gone: the event stays, as a copy in the DLQ, acked after.
        result.failed.append((plan.letter, str(e)))
        writer.submit([_keep(queue, plan)]).wait(timeout)
    else:
        result.replayed.append(plan.letter)


def _send(writer: Writer, queue: str, plan: _Plan) -> Confirm | None:
    if plan.purge:
        return None
    if plan.replay and plan.letter.queue:  # always named when replay is set; the check is for mypy
        return writer.submit(
            [plan.message.copy_to(plan.letter.queue, replay_headers(plan.message.headers, plan.publisher))]
        )
    return writer.submit([_keep(queue, plan)])


def _keep(queue: str, plan: _Plan) -> OutgoingMessage:
    return plan.message.copy_to(queue, kept_headers(plan.message.headers, plan.letter, plan.publisher))


class DeadLetterQueue:
    """One DLQ on one broker: each method is one pass over it on a connection of its own."""

    def __init__(self, endpoint: BrokerEndpoint, queue: str, *, timeouts: Timeouts = TIMEOUTS) -> None:
        self.endpoint = endpoint
        self.queue = queue
        self._timeouts = timeouts

    def depth(self) -> int:
        """Messages ready in the queue; :class:`rabbitsync.transport.NotFound` if it does not exist."""
        with declarations(self.endpoint, name=CONNECTION_NAME, timeouts=self._timeouts) as broker:
            return broker.message_count(self.queue)

    def look(self, progress: Progress | None = None) -> PassResult:
        """Every dead letter, oldest first; the queue keeps them all, in order, no delivery counted."""
        return self._pass(self.depth(), progress=progress)

    def replay(self, select: Select, progress: Progress | None = None) -> PassResult:
        """Send the selected dead letters back to their queues; the others stay, in order."""
        return self._pass(self.depth(), replay=select, progress=progress)

    def purge(self, count: int, progress: Progress | None = None) -> int:
        """Delete the ``count`` oldest dead letters (those a person agreed to), not ones arrived since."""
        return self._pass(count, purge=True, progress=progress).purged

    def _pass(
        self, count: int, *, replay: Select | None = None, purge: bool = False, progress: Progress | None = None
    ) -> PassResult:
        if count <= 0:
            return PassResult()
        timeout = self._timeouts.operation_s
        with open_session(self.endpoint, name=CONNECTION_NAME, timeouts=self._timeouts) as session:
            # The session first: a wrong URL or a refused login fails here, in one clear error.
            publisher = ConfirmedPublisher(self.endpoint, name=f"{CONNECTION_NAME}-publish", timeouts=self._timeouts)
            publisher.start()
            try:
                _wait_ready(publisher, timeout)
                return run_pass(
                    session,
                    publisher,
                    self.queue,
                    count,
                    replay=replay,
                    purge=purge,
                    progress=progress,
                    timeout=timeout,
                    user=self.endpoint.username,
                )
            finally:
                publisher.close()


def _wait_ready(publisher: ConfirmedPublisher, timeout: float) -> None:
    # publish() of nothing waits for the confirm-mode channel without sending anything.
    publisher.publish([], timeout)
    if not publisher.ready():
        raise BrokerUnreachable(f"could not open a publishing channel within {timeout:.0f}s")
