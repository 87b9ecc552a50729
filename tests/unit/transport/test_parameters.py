"""The one builder of connection parameters: timeouts, a name, verified TLS, no password in errors."""

from __future__ import annotations

import ssl
from pathlib import Path

import pika
import pytest

from harness import pki
from rabbitsync.amqp.management import ManagementClient
from rabbitsync.amqp.rabbit import RabbitBroker
from rabbitsync.transport import BrokerEndpoint, InvalidEndpoint, Timeouts, connection_parameters, tls_context

pytestmark = pytest.mark.unit

PASSWORD = "s3cr%2Ft"  # percent-encoded "/" so both the raw and the decoded form must stay hidden


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory: pytest.TempPathFactory) -> str:
    return Path(pki.generate(tmp_path_factory.mktemp("pki")).ca_cert).read_text()


def test_every_timeout_and_the_name_are_set() -> None:
    timeouts = Timeouts(connect_s=2.0, operation_s=5.0, heartbeat_s=7, blocked_s=30.0)
    params = connection_parameters(BrokerEndpoint("amqp://u:p@rabbit:5673/prod"), name="relay-x", timeouts=timeouts)
    assert (params.host, params.port, params.virtual_host) == ("rabbit", 5673, "prod")
    assert (params.socket_timeout, params.stack_timeout) == (2.0, 4.0)
    assert (params.heartbeat, params.blocked_connection_timeout) == (7, 30.0)
    assert params.connection_attempts == 1  # the callers own the retry loop
    assert params.client_properties == {"connection_name": "relay-x"}
    assert params.ssl_options is None


def test_operator_defaults_fail_fast() -> None:
    params = connection_parameters(BrokerEndpoint("amqp://rabbit/"), name="op", timeouts=Timeouts())
    assert (params.socket_timeout, params.stack_timeout, params.heartbeat, params.blocked_connection_timeout) == (
        3.0,
        6.0,
        10,
        10.0,
    )


def test_tls_verifies_against_the_endpoint_ca_and_host(ca_pem: str) -> None:
    endpoint = BrokerEndpoint("amqps://u:p@rabbit.example/", ca_pem=ca_pem)
    params = connection_parameters(endpoint, name="op", timeouts=Timeouts())
    assert isinstance(params.ssl_options, pika.SSLOptions)
    assert params.ssl_options.server_hostname == "rabbit.example"
    context = params.ssl_options.context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    subjects = [dict(item[0] for item in cert["subject"]) for cert in context.get_ca_certs()]
    assert {"commonName": "rabbitsync-local-ca"} in subjects


def test_tls_without_a_ca_uses_the_system_store() -> None:
    assert tls_context(None).verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    "bad_ca", ["not a certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"]
)
def test_a_bad_ca_is_an_invalid_endpoint_wherever_tls_is_built(bad_ca: str) -> None:
    with pytest.raises(InvalidEndpoint):
        tls_context(bad_ca)
    with pytest.raises(InvalidEndpoint):
        connection_parameters(BrokerEndpoint("amqps://rabbit/", ca_pem=bad_ca), name="op", timeouts=Timeouts())
    # The management API over https used to let ssl.SSLError escape from here.
    with pytest.raises(InvalidEndpoint):
        ManagementClient(BrokerEndpoint("amqp://rabbit/", "https://rabbit:15671", ca_pem=bad_ca))
    with pytest.raises(InvalidEndpoint):
        RabbitBroker(BrokerEndpoint("amqps://rabbit/", ca_pem=bad_ca))


@pytest.mark.parametrize(
    "uri",
    [
        f"amqp://u:{PASSWORD}@rabbit:99999/",
        f"amqp://u:{PASSWORD}@rabbit:port/",
        f"http://u:{PASSWORD}@rabbit/",
        f"amqp://u:{PASSWORD}@/",
        f"amqp://u:{PASSWORD}@[::1/",
    ],
)
def test_an_unusable_uri_is_an_invalid_endpoint_without_the_password(uri: str) -> None:
    with pytest.raises(InvalidEndpoint) as caught:
        BrokerEndpoint(uri)
    _assert_hidden(caught.value)


@pytest.mark.parametrize("query", ["heartbeat=often", "no_such_option=1", f"socket_timeout=-{PASSWORD}"])
def test_uri_options_pika_refuses_are_an_invalid_endpoint_without_the_password(query: str) -> None:
    endpoint = BrokerEndpoint(f"amqp://u:{PASSWORD}@rabbit/?{query}")
    with pytest.raises(InvalidEndpoint) as caught:
        connection_parameters(endpoint, name="op", timeouts=Timeouts())
    _assert_hidden(caught.value)
    assert caught.value.permanent and caught.value.reason == "InvalidBrokerURI"


def test_the_endpoint_repr_hides_the_uris() -> None:
    endpoint = BrokerEndpoint(f"amqp://u:{PASSWORD}@rabbit/", f"http://u:{PASSWORD}@rabbit:15672")
    assert PASSWORD not in repr(endpoint) and "s3cr/t" not in repr(endpoint)


def _assert_hidden(error: BaseException) -> None:
    for text in (str(error), str(error.__cause__ or "")):
        assert PASSWORD not in text and "s3cr/t" not in text
