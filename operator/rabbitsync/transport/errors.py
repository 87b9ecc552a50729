"""rabbitsync's broker exceptions: pika, socket, TLS and HTTP errors never leave ``transport`` and ``amqp``.

Each class says whether retrying can help (``permanent``) and gives the condition ``reason`` the
controller reports, so the kopf handler maps failures without knowing the broker library:
temporary ones are retried with capped backoff, permanent ones become a condition and an Event and
wait for a change of spec or Secret.
"""

from __future__ import annotations

from typing import ClassVar


class BrokerError(Exception):
    """Something went wrong talking to the broker."""

    permanent: ClassVar[bool] = True
    reason: ClassVar[str] = "BrokerError"


class BrokerUnreachable(BrokerError):
    """No connection (refused, timed out, lost, broker stopping, confirms overdue): retry later."""

    permanent = False
    reason = "BrokerUnreachable"


class AccessRefused(BrokerError):
    """Credentials or permissions refused (AMQP 403/530, HTTP 401/403): a human must fix the Secret."""

    reason = "AccessRefused"


class PreconditionFailed(BrokerError):
    """The broker holds an object incompatible with the declaration (AMQP 406), e.g. other arguments."""

    reason = "PreconditionFailed"


class NotFound(BrokerError):
    """A vhost, exchange or queue the operation needs does not exist (AMQP/HTTP 404)."""

    reason = "NotFound"


class InvalidEndpoint(BrokerError):
    """The broker URI (Secret or Django settings) cannot be used: bad scheme, unparsable, bad CA bundle."""

    reason = "InvalidBrokerURI"


class PublishRejected(BrokerError):
    """The broker refused a message: nacked, unroutable (mandatory) or the channel was closed on it."""

    reason = "PublishRejected"


class Unroutable(PublishRejected):
    """A mandatory message reached no queue (``basic.return``): the broker routed it nowhere."""

    reason = "Unroutable"
