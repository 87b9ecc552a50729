"""The unroutable-event net on a real broker: a policy on an exchange that already exists, applied by
both clusters' operators, catching what no binding takes (issue 10, point 5)."""

from __future__ import annotations

import urllib.parse

import pika
import pytest

from harness import rabbitmq
from rabbitsync.amqp import ConnectionPool, RabbitBroker
from rabbitsync.topology.unroutable import unroutable_for
from rabbitsync.transport import BrokerEndpoint

pytestmark = pytest.mark.integration


def test_both_operators_apply_the_same_policy_and_the_existing_exchange_keeps_what_it_cannot_route(broker, uid):
    exchange = f"rabbitsync.test.{uid}"
    net = unroutable_for(exchange)
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    pool = ConnectionPool()
    try:
        channel = connection.channel()
        channel.exchange_declare(exchange, "topic", durable=True)  # exists before any policy, no arguments
        east = RabbitBroker(BrokerEndpoint(broker.amqp_url, broker.management_url), connections=pool)
        west = RabbitBroker(BrokerEndpoint(broker.amqp_url, broker.management_url))
        assert east.keep_unroutable(net) == west.keep_unroutable(net) == f"unroutable events kept in queue {net.queue}"
        assert east.keep_unroutable(net) and pool.opened == 1, "every resync declares on the operator's kept connection"
        quoted = urllib.parse.quote(exchange, safe="")
        assert broker.management_get(f"/api/exchanges/%2F/{quoted}")["policy"] == net.policy  # type: ignore[index]

        channel.confirm_delivery()
        # Mandatory: pika raises UnroutableError on a basic.return. The alternate exchange takes it instead.
        channel.basic_publish(
            exchange, "ns.nobody.listens", b"{}", pika.BasicProperties(message_id="m1"), mandatory=True
        )
        method, _props, _body = channel.basic_get(net.queue, auto_ack=True)
        assert method is not None and method.routing_key == "ns.nobody.listens", "the original routing key is kept"
    finally:
        pool.close()
        cleanup = connection.channel()
        cleanup.queue_delete(net.queue)
        cleanup.exchange_delete(net.alternate_exchange)
        cleanup.exchange_delete(exchange)
        connection.close()
        rabbitmq.management_request(broker.management_url, "DELETE", f"/api/policies/%2F/{net.policy}")
