"""Listing and replaying dead letters: the operator's answer to "a consumer failed, now what?".

The sidecar parks an event it could not apply in ``<queue>.dlq`` with the reason in headers
(``routing``). Listing peeks without consuming: messages are fetched unacknowledged and handed back
when the channel closes. Replaying republishes a dead letter to its subscription's queue with the
failure headers dropped and the attempt counter reset, waits for the broker's confirm, and only then
acks it off the dead-letter queue: a crash in between leaves a duplicate, which the inbox absorbs,
never a loss.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from rabbitsync.sidecar import routing

_FAILURE_HEADERS = (routing.REASON, routing.EXCEPTION_TYPE, routing.EXCEPTION_MESSAGE, routing.ATTEMPTS)


class DeadLetterError(Exception):
    """The broker could not be reached or refused an operation on the dead-letter queue."""


@dataclass(frozen=True)
class DeadLetter:
    message_id: str | None
    type: str | None
    reason: str | None
    exception_type: str | None
    exception_message: str | None
    attempts: int | None
    queue: str | None
    """The subscription queue the event failed in, where a replay sends it back."""

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _describe(properties: pika.BasicProperties) -> DeadLetter:
    headers = properties.headers or {}

    def text(key: str) -> str | None:
        value = headers.get(key)
        return value.decode() if isinstance(value, bytes) else (str(value) if value is not None else None)

    attempts = headers.get(routing.ATTEMPTS)
    return DeadLetter(
        message_id=properties.message_id,
        type=properties.type,
        reason=text(routing.REASON),
        exception_type=text(routing.EXCEPTION_TYPE),
        exception_message=text(routing.EXCEPTION_MESSAGE),
        attempts=int(attempts) if attempts is not None else None,
        queue=text(routing.QUEUE),
    )


@contextmanager
def _channel(amqp_url: str) -> Iterator[BlockingChannel]:
    try:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    except (pika.exceptions.AMQPError, OSError, ValueError) as e:
        raise DeadLetterError(f"cannot connect to the broker: {e}") from e
    try:
        yield connection.channel()
    except pika.exceptions.AMQPError as e:
        raise DeadLetterError(str(e)) from e
    finally:
        if connection.is_open:
            connection.close()


def list_dead_letters(amqp_url: str, queue: str, limit: int = 100) -> list[DeadLetter]:
    """Up to ``limit`` dead letters of ``queue`` (the ``.dlq``), left in place."""
    found = []
    with _channel(amqp_url) as channel:
        for _ in range(limit):
            method, properties, _body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            found.append(_describe(properties))
        # Closing the channel (on context exit) returns every unacknowledged message to the queue.
    return found


def replay(amqp_url: str, queue: str, message_id: str | None = None, limit: int = 1000) -> int:
    """Send dead letters of ``queue`` back to their subscription queue; only ``message_id`` if given."""
    replayed = 0
    with _channel(amqp_url) as channel:
        channel.confirm_delivery()
        for _ in range(limit):
            method, properties, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            letter = _describe(properties)
            if (message_id is not None and letter.message_id != message_id) or not letter.queue:
                continue  # left unacknowledged: back in the queue when the channel closes
            headers = {k: v for k, v in (properties.headers or {}).items() if k not in _FAILURE_HEADERS}
            headers[routing.ATTEMPT] = 1
            properties.headers = headers
            try:
                channel.basic_publish("", letter.queue, body, properties, mandatory=True)
            except pika.exceptions.UnroutableError as e:
                raise DeadLetterError(f"queue {letter.queue} no longer exists; {letter.message_id} stays") from e
            channel.basic_ack(method.delivery_tag)
            replayed += 1
    return replayed


def dumps(letters: list[DeadLetter]) -> str:
    return json.dumps([d.to_json() for d in letters], indent=2)
