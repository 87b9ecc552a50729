"""The harness gives a real RabbitMQ with its management API."""

from __future__ import annotations

import urllib.parse

import pika


def test_quorum_queue_declared_over_amqp_is_seen_by_management_api(broker, uid):
    queue = f"harness.{uid}"
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    try:
        ch = conn.channel()
        ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
        info = broker.management_get(f"/api/queues/%2F/{urllib.parse.quote(queue, safe='')}")
        assert info["durable"] is True
        assert info["type"] == "quorum"
        assert info["arguments"]["x-queue-type"] == "quorum"
        ch.queue_delete(queue)
    finally:
        conn.close()


def test_the_broker_runs_the_version_asked_for(broker):
    # RABBITSYNC_RABBITMQ=4.0 runs Debian 13's RabbitMQ in a chroot; a reused shared broker is 3.10.
    overview = broker.management_get("/api/overview")
    assert overview["rabbitmq_version"].startswith(broker.info.version + ".")
