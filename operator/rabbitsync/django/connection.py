"""The broker connections of a Django process, assembled from its :class:`Settings` in one place.

The relay, the sidecar's consumer and its rerouting publisher all reach the same broker with the
same timing; building the endpoint, the timeouts and the connection names here keeps them so.
"""

from __future__ import annotations

from collections.abc import Callable

from rabbitsync.django.conf import Settings
from rabbitsync.transport import BrokerEndpoint, ConfirmedPublisher, Timeouts

CONNECT_TIMEOUT = 10.0
"""Seconds for a TCP connect (twice that for the whole opening): long-lived connections can afford
a slow link, and the redial loop, not this timeout, is what rides out an outage."""


def endpoint(settings: Settings) -> BrokerEndpoint:
    """The broker of ``settings.amqp_url``, verified with ``settings.ca_pem`` when one is given (the CA the
    operator copies into the service's Secret); raises ``InvalidEndpoint`` if it is not an AMQP URI."""
    return BrokerEndpoint(settings.amqp_url, ca_pem=settings.ca_pem or None)


def timeouts(settings: Settings) -> Timeouts:
    return Timeouts(
        connect_s=CONNECT_TIMEOUT,
        operation_s=settings.confirm_timeout,
        heartbeat_s=settings.heartbeat,
        blocked_s=settings.blocked_connection_timeout,
    )


def connection_name(settings: Settings, role: str) -> str:
    """How the broker's connection list names this process's ``role`` connection."""
    return f"rabbitsync-{role}-{settings.service or 'unknown'}"


def publisher(settings: Settings, *, role: str, on_reconnect: Callable[[], None] | None = None) -> ConfirmedPublisher:
    """A confirmed publisher to the configured broker, not started."""
    return ConfirmedPublisher(
        endpoint(settings),
        name=connection_name(settings, role),
        timeouts=timeouts(settings),
        reconnect_max_delay=settings.reconnect_max_delay,
        on_reconnect=on_reconnect,
    )
