"""The one builder of pika connection parameters, and of the TLS context every broker client uses.

Every connection rabbitsync opens (operator, relay, sidecar, CLI) is built here, so none goes without
timeouts or a name, and TLS always verifies the broker against the endpoint's CA and host name.
"""

from __future__ import annotations

import ssl
from urllib.parse import unquote, urlsplit

import pika

from rabbitsync.transport.endpoint import BrokerEndpoint, Timeouts
from rabbitsync.transport.errors import InvalidEndpoint


def connection_parameters(endpoint: BrokerEndpoint, *, name: str, timeouts: Timeouts) -> pika.URLParameters:
    """Parameters for one connection to ``endpoint``; ``name`` shows in the broker's connection list."""
    try:
        params = pika.URLParameters(endpoint.amqp_uri)
    except (ValueError, TypeError) as e:
        message = _redacted(str(e), endpoint)
        error = InvalidEndpoint(f"the broker uri is not usable: {message}")
        # pika's message quotes what it refused; if that was the password, the original must go.
        raise error from (e if message == str(e) else None)
    # The callers own their retry loops (kopf, or jittered backoff); pika's own attempts would only
    # hide an outage from them.
    params.connection_attempts = 1
    params.socket_timeout = timeouts.connect_s
    params.stack_timeout = timeouts.connect_s * 2
    params.heartbeat = timeouts.heartbeat_s
    params.blocked_connection_timeout = timeouts.blocked_s
    params.client_properties = {"connection_name": name}
    if endpoint.tls:
        params.ssl_options = pika.SSLOptions(tls_context(endpoint.ca_pem), server_hostname=endpoint.host)
    return params


def tls_context(ca_pem: str | None) -> ssl.SSLContext:
    """A verifying client context trusting ``ca_pem`` (PEM text), or the system store when ``None``."""
    try:
        return ssl.create_default_context(cadata=ca_pem)
    except (ssl.SSLError, ValueError) as e:
        raise InvalidEndpoint(f"the CA bundle is not valid PEM: {e}") from e


def _redacted(text: str, endpoint: BrokerEndpoint) -> str:
    password = urlsplit(endpoint.amqp_uri).password
    for secret in {password, unquote(password)} if password else set():
        text = text.replace(secret, "***")
    return text
