"""The operator's backfill port on a real broker: who may publish a type, requests out, reports in."""

from __future__ import annotations

import pika
import pytest

from rabbitsync.amqp import BrokerUser, RabbitBroker, UserLimits, rights_for
from rabbitsync.amqp.backfill import RabbitBackfill
from rabbitsync.events.backfill import BackfillReport, BackfillRequest, decode_request, encode
from rabbitsync.topology import naming
from rabbitsync.topology.diff import Plan, QueueDeletion
from rabbitsync.transport import BrokerEndpoint

pytestmark = pytest.mark.integration


def test_topic_writers_requests_and_reports_round_trip(broker, uid):
    exchange = f"rabbitsync.test.{uid}"
    endpoint = BrokerEndpoint(broker.amqp_url, broker.management_url)
    port, users = RabbitBackfill(endpoint), RabbitBroker(endpoint)
    publisher = f"rabbitsync.east.ns{uid}.restaurant"
    try:
        permissions, topic = rights_for(
            cluster="east",
            namespace=f"ns{uid}",
            exchange=exchange,
            subscriptions=["copy"],
            published=["R_UPDATED"],
            service="restaurant",
        )
        users.put_user(BrokerUser(publisher, "pw", permissions, topic, UserLimits(8, 8)))
        writers = port.topic_writers(exchange)
        assert writers == {publisher: topic.write}, "only users with topic rights on this exchange"

        requests = publisher + naming.BACKFILL_REQUESTS_SUFFIX
        assert port.consumers(requests) is None
        request = BackfillRequest(id=f"r{uid}", namespace=f"ns{uid}", queue="q", types=("R_UPDATED",))
        port.send_request(requests, request)

        status = naming.backfill_status_queue(f"rabbitsync.east.ns{uid}.copy")
        assert port.read_reports(status, lambda _r: False) is None, "no status queue yet: None, no error"
        port.open_reports(status)
        connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            report = BackfillReport(request=request.id, run="run", sent=2, applied=2, complete=True)
            sent = pika.BasicProperties(user_id="guest", timestamp=1700000000)
            channel.basic_publish("", status, encode(report), sent)
            channel.basic_publish("", status, b"not a report", pika.BasicProperties(user_id="guest"))
            method, _props, body = channel.basic_get(requests, auto_ack=True)
            assert method is not None and decode_request(body) == request
        finally:
            connection.close()
        [read] = port.read_reports(status, lambda r: r.body == b"not a report") or []
        assert (read.user_id, read.body, read.timestamp) == ("guest", encode(report), 1700000000)
        assert port.read_reports(status, lambda _r: False) == [read], "read, not taken; the worthless one removed"
        users.apply(Plan(delete_queues=(QueueDeletion(status, if_empty=False),)))
    finally:
        users.delete_user(publisher)
        connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        try:
            channel = connection.channel()
            channel.queue_delete(publisher + naming.BACKFILL_REQUESTS_SUFFIX)
        finally:
            connection.close()


def test_a_report_survives_more_reads_than_the_brokers_default_delivery_limit(broker, uid):
    """A long backfill reads its early reports once per step; RabbitMQ 4 drops a quorum queue's message
    handed back 20 times unless the queue says otherwise (this test runs on 3.10 and 4.0)."""
    endpoint = BrokerEndpoint(broker.amqp_url, broker.management_url)
    port = RabbitBackfill(endpoint)
    status = naming.backfill_status_queue(f"rabbitsync.east.ns{uid}.copy")
    port.open_reports(status)
    try:
        connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.basic_publish("", status, b"report", pika.BasicProperties(user_id="guest"))
        finally:
            connection.close()
        for read in range(30):
            assert [r.body for r in port.read_reports(status, lambda _r: False) or []] == [b"report"], read
    finally:
        RabbitBroker(endpoint).apply(Plan(delete_queues=(QueueDeletion(status, if_empty=False),)))
