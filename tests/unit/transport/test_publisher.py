"""The confirmed publisher's pure parts: batch handles, message properties, copies of deliveries."""

from __future__ import annotations

import pytest

from rabbitsync.events import CONTENT_TYPE, MessageProperties
from rabbitsync.transport import (
    BrokerEndpoint,
    BrokerUnreachable,
    ConfirmedPublisher,
    IncomingMessage,
    OutgoingMessage,
    PublishHandle,
    PublishRejected,
    Timeouts,
)
from rabbitsync.transport.publisher import pika_properties

pytestmark = pytest.mark.unit


def _message(message_id: str = "ev-1") -> OutgoingMessage:
    return OutgoingMessage("ex", "menu.updated", b"{}", MessageProperties(message_id, "menu.updated", 1700000000))


def test_a_handle_is_done_when_every_message_is_confirmed() -> None:
    handle = PublishHandle(3)
    handle.confirm(2)
    assert not handle.done()
    handle.confirm()
    assert handle.done()
    handle.wait(0)  # no error


def test_the_first_failure_wins_and_is_raised() -> None:
    handle = PublishHandle(2)
    handle.fail(PublishRejected("nacked"))
    handle.fail(BrokerUnreachable("lost"))
    with pytest.raises(PublishRejected):
        handle.wait(0)


def test_overdue_confirms_mean_the_broker_is_away() -> None:
    with pytest.raises(BrokerUnreachable, match="no publisher confirms"):
        PublishHandle(1).wait(0.01)


def test_an_empty_batch_is_done_at_once() -> None:
    assert PublishHandle(0).done()


def test_a_publisher_not_connected_fails_the_batch_without_blocking() -> None:
    publisher = ConfirmedPublisher(BrokerEndpoint("amqp://rabbit/"), name="t", timeouts=Timeouts())
    with pytest.raises(BrokerUnreachable, match="not connected"):
        publisher.submit([_message()]).wait(0)


def test_properties_and_headers_go_on_the_wire() -> None:
    message = OutgoingMessage("", "q", b"{}", MessageProperties("ev-1", "t", 17), headers={"x-a": 1}, mandatory=True)
    props = pika_properties(message)
    assert (props.message_id, props.type, props.timestamp, props.delivery_mode) == ("ev-1", "t", 17, 2)
    assert (props.content_type, props.headers) == (CONTENT_TYPE, {"x-a": 1})
    assert pika_properties(_message()).headers is None


def test_a_copy_keeps_the_event_and_replaces_the_headers() -> None:
    incoming = IncomingMessage(
        tag=7, body=b"{}", headers={"old": 1}, message_id="ev-1", type="t", timestamp=17, content_type="x/y"
    )
    copy = incoming.copy_to("q.dlq", {"x-rabbitsync-reason": "failed"})
    assert (copy.exchange, copy.routing_key, copy.body, copy.mandatory) == ("", "q.dlq", b"{}", True)
    assert copy.properties == MessageProperties("ev-1", "t", 17, content_type="x/y")
    assert copy.headers == {"x-rabbitsync-reason": "failed"}


def test_a_copy_through_an_exchange_is_mandatory_too() -> None:
    # A delay exchange no queue is bound to must be a failure, not a silent loss.
    incoming = IncomingMessage(tag=7, body=b"{}", headers={}, message_id="ev-1", type="t", timestamp=17)
    copy = incoming.copy_to("q", {"x-rabbitsync-attempt": 2}, exchange="c.@delay.quorum.1000ms")
    assert (copy.exchange, copy.routing_key, copy.mandatory) == ("c.@delay.quorum.1000ms", "q", True)
    assert copy.properties == incoming.copy_to("q", {}).properties
    assert copy.headers == {"x-rabbitsync-attempt": 2}


def test_a_copy_of_a_bare_message_gets_an_id_to_match_returns_on() -> None:
    copy = IncomingMessage(tag=1, body=b"x", headers={}).copy_to("q.dlq", {})
    assert copy.properties.message_id.startswith("rabbitsync-")
    assert copy.properties.content_type == CONTENT_TYPE and copy.properties.timestamp > 0
