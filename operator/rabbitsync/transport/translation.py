"""pika, socket and TLS failures turned into :mod:`rabbitsync.transport.errors`, in one place.

Every call into pika goes through :func:`translated` (or catches :data:`IO_ERRORS` and raises
:func:`translate`), so the operator, the relay, the sidecar and the CLI all see the same classes with
the same ``permanent`` and ``reason``, whichever of them met the failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pika.exceptions

from rabbitsync.transport.errors import (
    AccessRefused,
    BrokerError,
    BrokerUnreachable,
    NotFound,
    PreconditionFailed,
    PublishRejected,
)

IO_ERRORS: tuple[type[pika.exceptions.AMQPError], type[OSError]] = (pika.exceptions.AMQPError, OSError)
"""What talking to a broker can raise: pika's errors, and socket errors (``ssl.SSLError`` and
timeouts among them) that pika or the standard library let through."""


def translate(error: pika.exceptions.AMQPError | OSError) -> BrokerError:
    """rabbitsync's error for a pika, socket or TLS failure; raise it ``from`` the original."""
    if isinstance(error, pika.exceptions.ChannelClosedByBroker | pika.exceptions.ConnectionClosedByBroker):
        return _by_reply_code(error.reply_code, error.reply_text)
    if isinstance(error, pika.exceptions.ProbableAuthenticationError | pika.exceptions.ProbableAccessDeniedError):
        return AccessRefused(f"broker refused the login: {error}")
    if isinstance(error, pika.exceptions.UnroutableError):
        return PublishRejected("unroutable: the broker returned the message (no queue for its routing key)")
    if isinstance(error, pika.exceptions.NackError):
        return PublishRejected("the broker nacked the message")
    # Everything else means the connection is not usable now (refused, reset, timed out, TLS
    # session broken, channel or connection in the wrong state after a loss): redialling may help.
    return BrokerUnreachable(f"broker unreachable: {error!r}")


@contextmanager
def translated() -> Iterator[None]:
    """Run the ``with`` block with pika, socket and TLS errors raised as :class:`BrokerError`."""
    try:
        yield
    except IO_ERRORS as e:
        raise translate(e) from e


def _by_reply_code(code: int, text: str) -> BrokerError:
    if code == 406:
        return PreconditionFailed(text)
    if code == 404:
        return NotFound(text)
    if code == 530 and "not found" in text.lower():  # NOT_ALLOWED - vhost ... not found
        return NotFound(text)
    if code in (403, 530):
        return AccessRefused(text)
    if code == 320:  # CONNECTION_FORCED: broker shutting down or an operator closed us
        return BrokerUnreachable(text)
    return BrokerError(f"broker closed the channel ({code}): {text}")
