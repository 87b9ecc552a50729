"""Listing and replaying dead letters: the operator's answer to "a consumer failed, now what?".

The sidecar parks an event it could not apply in ``<queue>.dlq`` with the reason in headers
(``routing``). Listing peeks without consuming: messages are fetched unacknowledged and handed back
when the session closes. Replaying republishes a dead letter to its subscription's queue with the
failure headers dropped and the attempt counter reset, waits for the broker's confirm, and only then
acks it off the dead-letter queue: a crash in between leaves a duplicate, which the inbox absorbs,
never a loss. Failures are :mod:`rabbitsync.transport.errors`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from rabbitsync.sidecar import routing
from rabbitsync.transport import (
    BrokerEndpoint,
    ConfirmedPublisher,
    IncomingMessage,
    PublishRejected,
    Timeouts,
    open_session,
)

CONNECTION_NAME = "rabbitsync-cli"
TIMEOUTS = Timeouts()
"""The short defaults: a person is waiting at the terminal, and a failure is better than a hang."""

_FAILURE_HEADERS = (routing.REASON, routing.EXCEPTION_TYPE, routing.EXCEPTION_MESSAGE, routing.ATTEMPTS)


@dataclass(frozen=True)
class DeadLetterEntry:
    """One parked event as ``dead-letters list`` shows it: why it failed, and where it came from."""

    message_id: str | None
    type: str | None
    reason: str | None
    exception_type: str | None
    exception_message: str | None
    attempts: int | None
    queue: str | None
    """The subscription queue the event failed in, where a replay sends it back."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _describe(message: IncomingMessage) -> DeadLetterEntry:
    headers = message.headers

    def text(key: str) -> str | None:
        value = headers.get(key)
        return value.decode() if isinstance(value, bytes) else (str(value) if value is not None else None)

    attempts = headers.get(routing.ATTEMPTS)
    return DeadLetterEntry(
        message_id=message.message_id,
        type=message.type,
        reason=text(routing.REASON),
        exception_type=text(routing.EXCEPTION_TYPE),
        exception_message=text(routing.EXCEPTION_MESSAGE),
        attempts=int(attempts) if attempts is not None else None,
        queue=text(routing.QUEUE),
    )


def list_dead_letters(endpoint: BrokerEndpoint, queue: str, limit: int = 100) -> list[DeadLetterEntry]:
    """Up to ``limit`` dead letters of ``queue`` (the ``.dlq``), left in place."""
    found: list[DeadLetterEntry] = []
    with open_session(endpoint, name=CONNECTION_NAME, timeouts=TIMEOUTS) as session:
        for _ in range(limit):
            message = session.get(queue)
            if message is None:
                break
            found.append(_describe(message))
        # Closing the session (on context exit) returns every unacknowledged message to the queue.
    return found


def replay(endpoint: BrokerEndpoint, queue: str, message_id: str | None = None, limit: int = 1000) -> int:
    """Send dead letters of ``queue`` back to their subscription queue; only ``message_id`` if given."""
    replayed = 0
    publisher = ConfirmedPublisher(endpoint, name=f"{CONNECTION_NAME}-replay", timeouts=TIMEOUTS).start()
    try:
        with open_session(endpoint, name=CONNECTION_NAME, timeouts=TIMEOUTS) as session:
            for _ in range(limit):
                message = session.get(queue)
                if message is None:
                    break
                letter = _describe(message)
                if (message_id is not None and letter.message_id != message_id) or not letter.queue:
                    continue  # left unacknowledged: back in the queue when the session closes
                headers = {k: v for k, v in message.headers.items() if k not in _FAILURE_HEADERS}
                headers[routing.ATTEMPT] = 1
                try:
                    publisher.publish([message.copy_to(letter.queue, headers)], timeout=TIMEOUTS.operation_s)
                except PublishRejected as e:  # e.g. its subscription queue no longer exists
                    raise PublishRejected(f"{e}; {letter.message_id} stays in {queue}") from e
                session.ack(message.tag)
                replayed += 1
    finally:
        publisher.close()
    return replayed


def dumps(letters: list[DeadLetterEntry]) -> str:
    return json.dumps([d.to_json() for d in letters], indent=2)
