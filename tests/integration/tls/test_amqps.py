"""Clients reach a TLS broker over amqps:// and https:// with the broker's CA, verifying its host name.

A CA that did not sign the broker's certificate, or a host name the certificate does not carry, gives
rabbitsync's own ``BrokerError`` (no pika or ssl exception), whose text holds no password (issue 9 item 8).
"""

from __future__ import annotations

import ssl
import urllib.parse
import uuid
from pathlib import Path

import pika
import pytest

from harness import pki, rabbitmq
from harness.polling import eventually
from rabbitsync.amqp import RabbitBroker
from rabbitsync.transport import BrokerEndpoint, BrokerError, BrokerUnreachable, Timeouts, connect, tls_context

TIMEOUTS = Timeouts(connect_s=5, operation_s=10)


def _endpoint(broker: rabbitmq.Broker, ca_pem: str | None) -> BrokerEndpoint:
    assert broker.amqps_url and broker.management_tls_url
    return BrokerEndpoint(broker.amqps_url, management_uri=broker.management_tls_url, ca_pem=ca_pem)


def _other_ca(tmp_path: Path) -> str:
    return pki.generate_broker(tmp_path / "other", ca_name="not-the-broker-ca").ca_cert.read_text()


def test_amqps_with_the_ca_carries_messages_and_the_broker_sees_a_tls_connection(tls_broker: rabbitmq.Broker):
    queue = f"tls.{uuid.uuid4().hex[:8]}"
    name = f"tls-test-{queue}"
    with connect(_endpoint(tls_broker, tls_broker.ca_pem), name=name, timeouts=TIMEOUTS) as connection:
        channel = connection.channel()
        channel.queue_declare(queue, exclusive=True)
        channel.basic_publish("", queue, b"over tls")
        _, _, body = channel.basic_get(queue, auto_ack=True)
        assert body == b"over tls"

        def ours() -> dict[str, object] | None:
            listed = rabbitmq.management_get(tls_broker.management_url, "/api/connections")
            return next((c for c in listed if c.get("client_properties", {}).get("connection_name") == name), None)

        # The management plugin lists a connection with its next statistics round (every 5 s).
        ours = eventually(ours, 20, f"connection {name} listed")
        assert ours["ssl"] is True
        assert ours["port"] == urllib.parse.urlsplit(tls_broker.amqps_url).port


def test_management_over_https_with_the_ca(tls_broker: rabbitmq.Broker):
    overview = rabbitmq.management_request(
        tls_broker.management_tls_url, "GET", "/api/overview", ca_pem=tls_broker.ca_pem
    )
    assert overview["rabbitmq_version"].startswith(tls_broker.version)
    RabbitBroker(_endpoint(tls_broker, tls_broker.ca_pem), TIMEOUTS).observe("amq.topic", "tls.none")


def test_the_client_checks_the_host_name(tls_broker: rabbitmq.Broker):
    context = tls_context(tls_broker.ca_pem)
    assert context.check_hostname
    params = pika.URLParameters(tls_broker.amqps_url)
    params.ssl_options = pika.SSLOptions(context, server_hostname="broker.invalid")
    params.connection_attempts = 1
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        pika.BlockingConnection(params)


def test_a_wrong_ca_is_a_broker_error_without_the_password(tls_broker: rabbitmq.Broker, tmp_path: Path):
    password = "tls-S3cr/t:@%"
    url = tls_broker.amqps_url.replace("guest:guest@", f"guest:{urllib.parse.quote(password, safe='')}@")
    endpoint = BrokerEndpoint(url, management_uri=tls_broker.management_tls_url, ca_pem=_other_ca(tmp_path))
    with pytest.raises(BrokerUnreachable) as amqp_error, connect(endpoint, name="tls-wrong-ca", timeouts=TIMEOUTS):
        pass
    assert "CERTIFICATE_VERIFY_FAILED" in str(amqp_error.value)
    with pytest.raises(BrokerError) as http_error:
        RabbitBroker(endpoint, TIMEOUTS).observe("amq.topic", "tls.none")
    for error in (amqp_error.value, http_error.value):
        for secret in (password, urllib.parse.quote(password, safe="")):
            assert secret not in str(error) and secret not in repr(error)
