"""The harness's three-node cluster: a quorum queue keeps every message when one node is lost.

The cluster is the harness's own (ports, node names, epmd and cookie of its own); RABBITSYNC_RABBITMQ
picks its version.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from harness import rabbitmq, rabbitmq_cluster
from harness.polling import eventually

QUEUE = "cluster.quorum"
MESSAGES = 200
ERRORS = (pika.exceptions.AMQPError, OSError)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[rabbitmq_cluster.Cluster]:
    options = dataclasses.replace(rabbitmq.Options.from_env(), tls=False)
    started = rabbitmq_cluster.start(tmp_path / "cluster", options=options)
    try:
        yield started
    finally:
        rabbitmq_cluster.stop(started)


def _publish(url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        for i in range(MESSAGES):
            channel.basic_publish("", QUEUE, str(i).encode(), pika.BasicProperties(delivery_mode=2))
    finally:
        connection.close()


def _drain(url: str, received: list[str]) -> bool:
    """Get what the queue holds into ``received``; True once every message is there."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        while (message := channel.basic_get(QUEUE, auto_ack=True))[0] is not None:
            received.append(message[2].decode())
    finally:
        if connection.is_open:
            connection.close()
    return len(received) >= MESSAGES


def test_three_nodes_join_and_a_quorum_queue_survives_the_loss_of_its_leader(cluster):
    names = sorted(node.node for node in cluster.nodes)
    assert len(set(names)) == 3
    assert cluster.running() == names
    _publish(cluster.nodes[0].amqp_url)

    info = rabbitmq.management_get(cluster.nodes[0].management_url, f"/api/queues/%2F/{urllib.parse.quote(QUEUE)}")
    assert sorted(info["members"]) == names
    [leader] = [node for node in cluster.nodes if node.node == info["leader"]]
    rabbitmq_cluster.kill(leader)
    survivor = next(node for node in cluster.nodes if node is not leader)

    # Until the survivors elect a new leader the queue may refuse or time out: retry the whole drain.
    received: list[str] = []
    eventually(lambda: _drain(survivor.amqp_url, received), 60, "messages from the survivors", tolerate=ERRORS)
    assert sorted(received, key=int) == [str(i) for i in range(MESSAGES)]

    rabbitmq_cluster.restart(leader)
    eventually(lambda: cluster.running() == names, 120, "the killed node back in the cluster")
