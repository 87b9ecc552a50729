"""The Django side reaches the broker through the same builder, from one place in its settings."""

from __future__ import annotations

import pytest

from rabbitsync.django import connection
from rabbitsync.django.conf import resolve
from rabbitsync.transport import InvalidEndpoint, connection_parameters

pytestmark = pytest.mark.unit


def test_settings_become_the_endpoint_timeouts_and_name() -> None:
    settings = resolve(
        {"AMQP_URL": "amqps://u:p@rabbit.example/sync", "SERVICE": "menu", "HEARTBEAT": 12},
        {"RABBITSYNC_BLOCKED_CONNECTION_TIMEOUT": "45"},
    )
    params = connection_parameters(
        connection.endpoint(settings),
        name=connection.connection_name(settings, "relay"),
        timeouts=connection.timeouts(settings),
    )
    assert (params.host, params.virtual_host) == ("rabbit.example", "sync")
    assert (params.heartbeat, params.blocked_connection_timeout) == (12, 45.0)
    assert params.socket_timeout == connection.CONNECT_TIMEOUT
    assert params.client_properties == {"connection_name": "rabbitsync-relay-menu"}
    assert params.ssl_options is not None and params.ssl_options.server_hostname == "rabbit.example"


def test_a_publisher_is_built_without_connecting() -> None:
    settings = resolve({"AMQP_URL": "amqp://rabbit/"}, {})
    assert not connection.publisher(settings, role="relay").ready()


def test_a_malformed_url_is_refused_before_any_connection() -> None:
    with pytest.raises(InvalidEndpoint):
        connection.publisher(resolve({"AMQP_URL": "rabbit:5672"}, {}), role="relay")
