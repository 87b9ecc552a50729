"""Every pika, socket and TLS failure comes out of the transport as one of rabbitsync's errors."""

from __future__ import annotations

import ssl

import pika.exceptions
import pytest

from rabbitsync.transport import (
    AccessRefused,
    BrokerEndpoint,
    BrokerError,
    BrokerUnreachable,
    NotFound,
    PreconditionFailed,
    PublishRejected,
    Timeouts,
    open_session,
    translate,
    translated,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (pika.exceptions.ChannelClosedByBroker(406, "PRECONDITION_FAILED - inequivalent arg"), PreconditionFailed),
        (pika.exceptions.ChannelClosedByBroker(404, "NOT_FOUND - no queue 'q'"), NotFound),
        (pika.exceptions.ChannelClosedByBroker(403, "ACCESS_REFUSED"), AccessRefused),
        (pika.exceptions.ChannelClosedByBroker(530, "NOT_ALLOWED - vhost x not found"), NotFound),
        (pika.exceptions.ChannelClosedByBroker(530, "NOT_ALLOWED - access to vhost refused"), AccessRefused),
        (pika.exceptions.ChannelClosedByBroker(540, "NOT_IMPLEMENTED"), BrokerError),
        (pika.exceptions.ConnectionClosedByBroker(530, "NOT_ALLOWED - vhost x not found"), NotFound),
        (pika.exceptions.ConnectionClosedByBroker(320, "CONNECTION_FORCED - shutdown"), BrokerUnreachable),
        (pika.exceptions.ConnectionClosedByBroker(403, "ACCESS_REFUSED - login refused"), AccessRefused),
        (pika.exceptions.ProbableAuthenticationError("bad login"), AccessRefused),
        (pika.exceptions.ProbableAccessDeniedError("no vhost access"), AccessRefused),
        (pika.exceptions.UnroutableError([]), PublishRejected),
        (pika.exceptions.NackError([]), PublishRejected),
        (pika.exceptions.AMQPConnectionError("refused"), BrokerUnreachable),
        (pika.exceptions.StreamLostError("reset"), BrokerUnreachable),
        (pika.exceptions.ChannelWrongStateError("channel closed"), BrokerUnreachable),
        (ConnectionRefusedError(111, "refused"), BrokerUnreachable),
        (TimeoutError("timed out"), BrokerUnreachable),
        (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), BrokerUnreachable),
    ],
)
def test_each_failure_has_its_class(error: Exception, expected: type[BrokerError]) -> None:
    assert type(translate(error)) is expected  # type: ignore[arg-type]


def test_reply_text_is_kept_for_the_condition_message() -> None:
    error = translate(pika.exceptions.ChannelClosedByBroker(406, "PRECONDITION_FAILED - inequivalent arg 'x-max'"))
    assert "inequivalent arg 'x-max'" in str(error)
    assert error.reason == "PreconditionFailed" and error.permanent


def test_only_a_lost_connection_is_temporary() -> None:
    assert not BrokerUnreachable.permanent
    for permanent in (AccessRefused, NotFound, PreconditionFailed, PublishRejected, BrokerError):
        assert permanent.permanent


def test_translated_raises_ours_chained_to_the_original() -> None:
    original = pika.exceptions.ChannelClosedByBroker(404, "NOT_FOUND")
    with pytest.raises(NotFound) as caught, translated():
        raise original
    assert caught.value.__cause__ is original


def test_translated_leaves_other_exceptions_alone() -> None:
    with pytest.raises(KeyError), translated():
        raise KeyError("not the broker's")
    with pytest.raises(PublishRejected), translated():
        raise PublishRejected("already ours")


def test_a_refused_connection_leaves_the_transport_as_ours() -> None:
    # Port 1 on loopback refuses at once: no server is involved, only the error path.
    closed = BrokerEndpoint("amqp://guest:guest@127.0.0.1:1/")
    with pytest.raises(BrokerUnreachable) as caught, open_session(closed, name="t", timeouts=Timeouts(connect_s=1)):
        pass
    assert isinstance(caught.value.__cause__, pika.exceptions.AMQPError | OSError)
