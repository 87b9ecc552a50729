"""Publish throughput: the seed's connection-per-publish against rabbitsync's pipelined confirms.

The seed's producer opened a new connection for every event. rabbitsync's relay keeps one
connection and pipelines a batch before collecting the publisher confirms. Both are measured in
one run against the same local broker, and the result is a ratio (the machine is shared and noisy,
absolute numbers are not comparable between runs):

    PYTHONPATH=hack .venv/bin/python bench/publish_throughput.py [--events 5000]

Every message is persistent and confirmed by the broker in all three variants, so they buy the same
guarantee; only the way of waiting differs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pika

from harness import rabbitmq
from rabbitsync.events import MessageProperties
from rabbitsync.transport import BrokerEndpoint, ConfirmedPublisher, OutgoingMessage, Timeouts, connection_parameters

BODY = b'{"specversion": "1.0", "type": "RESTAURANT_CREATED", "data": {"name": "bench"}}'


def _parameters(url: str) -> pika.URLParameters:
    # The same builder as rabbitsync's own connections: only the way of publishing differs.
    return connection_parameters(BrokerEndpoint(url), name="bench", timeouts=Timeouts())


def _props(i: int) -> pika.BasicProperties:
    return pika.BasicProperties(delivery_mode=2, message_id=str(i), type="RESTAURANT_CREATED")


def connection_per_publish(url: str, queue: str, n: int) -> None:
    """The seed's producer: connect, publish (confirmed), disconnect, for every event."""
    for i in range(n):
        connection = pika.BlockingConnection(_parameters(url))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("", queue, BODY, _props(i))
        connection.close()


def confirm_each(url: str, queue: str, n: int) -> None:
    """One connection, but a round trip per message (BlockingChannel in confirm mode)."""
    connection = pika.BlockingConnection(_parameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    for i in range(n):
        channel.basic_publish("", queue, BODY, _props(i))
    connection.close()


def pipelined(url: str, queue: str, n: int, batch: int = 500) -> None:
    """rabbitsync's relay publisher: batches in flight, confirms collected as they come."""
    publisher = ConfirmedPublisher(BrokerEndpoint(url), name="bench", timeouts=Timeouts()).start()
    try:
        deadline = time.monotonic() + 30
        while not publisher.ready() and time.monotonic() < deadline:
            time.sleep(0.01)
        for start in range(0, n, batch):
            messages = [
                OutgoingMessage("", queue, BODY, MessageProperties(message_id=str(i), type="X", timestamp=0))
                for i in range(start, min(n, start + batch))
            ]
            publisher.publish(messages, timeout=60)
    finally:
        publisher.close()


def measure(name: str, run: Callable[[str, str, int], None], url: str, n: int) -> float:
    queue = f"bench.{uuid.uuid4().hex[:8]}"
    connection = pika.BlockingConnection(_parameters(url))
    connection.channel().queue_declare(queue, durable=True)
    # Not kept open across the run: on a loaded machine its unserviced heartbeats got it reset.
    connection.close()
    started = time.perf_counter()
    run(url, queue, n)
    elapsed = time.perf_counter() - started
    connection = pika.BlockingConnection(_parameters(url))
    channel = connection.channel()
    depth = channel.queue_declare(queue, passive=True).method.message_count
    channel.queue_delete(queue)
    connection.close()
    if depth != n:
        raise SystemExit(f"{name}: {depth} of {n} messages arrived")
    rate = n / elapsed
    print(f"{name:24} {n:6d} events in {elapsed:7.2f}s = {rate:8.0f} events/s")
    return rate


def run(url: str, events: int) -> dict[str, float]:
    """The three rates (events/s) against the broker at ``url``."""
    # The seed's way is slow enough that a tenth of the events gives a stable rate.
    seed = measure("connection per publish", connection_per_publish, url, max(50, events // 10))
    each = measure("confirm each", confirm_each, url, events)
    ours = measure("pipelined confirms", pipelined, url, events)
    return {"connection_per_publish": seed, "confirm_each": each, "pipelined": ours}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, rabbitmq.running(Path(tmp) / "rabbitmq") as broker:
        rates = run(broker.amqp_url, args.events)
    ours = rates["pipelined"]
    print(
        f"pipelined / connection-per-publish = {ours / rates['connection_per_publish']:.1f}x; "
        f"pipelined / confirm-each = {ours / rates['confirm_each']:.1f}x"
    )


if __name__ == "__main__":
    main()
