"""What a RabbitMQ node spends on a subscription's topology: its quorum queues, and its policy.

Per subscription the operator declares its queues (``topology.desired_topology``: main, delay queues,
DLQ, all quorum) and puts one policy, the main queue's ``delivery-limit``
(``topology.delivery_limit``). This section times both on a node of its own, for ``subscriptions``
default subscriptions, in two vhosts of the same node:

- ``one policy``: the queues declared, then one vhost-wide policy matching every main queue;
- ``per queue``: the same queues declared, then a policy per main queue, as the operator puts them.

Every policy change makes the node re-match every queue of the vhost against every policy, so the
per-queue policies cost grows with queues times policies: the figure that keeps 1,000 subscriptions from
getting Ready (``operator_scale``), where declaring the queues alone would not.

    RABBITSYNC_BROKER_PRIVATE=1 PYTHONPATH=hack:bench .venv/bin/python bench/broker_policies.py [--subscriptions 100]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pika
from rows import Row

from harness import rabbitmq
from rabbitsync.amqp.management import ManagementClient
from rabbitsync.api.syncsubscription import SyncSubscriptionSpec
from rabbitsync.topology.delivery_limit import delivery_limit, delivery_limit_policy
from rabbitsync.topology.desired import desired_topology
from rabbitsync.topology.model import Policy, QueueRole, Topology
from rabbitsync.transport import BrokerEndpoint, Timeouts

EXCHANGE = "bench.policies"


def _topologies(subscriptions: int) -> list[Topology]:
    spec = SyncSubscriptionSpec(service="svc", events=["THING_CREATED"], broker="default")
    return [
        desired_topology(cluster="bench", namespace="ns", subscription=f"sub-{i:04d}", spec=spec, exchange=EXCHANGE)
        for i in range(subscriptions)
    ]


def _declare(url: str, topologies: list[Topology]) -> float:
    """Seconds to declare every queue of ``topologies`` on the vhost of ``url``."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        started = time.monotonic()
        for topology in topologies:
            for queue in topology.queues:
                channel.queue_declare(queue.name, durable=True, arguments=dict(queue.arguments))
        return time.monotonic() - started
    finally:
        connection.close()


def _put(broker: rabbitmq.Broker, vhost_url: str, policy: Policy) -> float:
    """Seconds one policy PUT took, through the operator's own client (the management API answers
    once the node re-matched the vhost; far longer than the operator's 10 s request timeout allows)."""
    client = ManagementClient(BrokerEndpoint(vhost_url, broker.management_url), Timeouts(operation_s=600))
    started = time.monotonic()
    client.put_policy(policy)
    return time.monotonic() - started


def _main_queues(topology: Topology) -> list[str]:
    return [q.name for q in topology.queues if q.role is QueueRole.MAIN]


def run(broker: rabbitmq.Broker, subscriptions: int = 100) -> dict[str, Any]:
    topologies = _topologies(subscriptions)
    queues = sum(len(t.queues) for t in topologies)
    shared, own = rabbitmq.create_vhost(broker, "bench-one-policy"), rabbitmq.create_vhost(broker, "bench-per-queue")
    one_declare = _declare(shared, topologies)
    every_main = Policy(
        name="all", pattern=r"^rabbitsync[.]bench[.]ns[.]sub-[0-9]+$", definition={"delivery-limit": 25}
    )
    one_policy = _put(broker, shared, every_main)
    per_declare = _declare(own, topologies)
    each = [
        _put(broker, own, delivery_limit_policy(main, delivery_limit(5)))
        for t in topologies
        for main in _main_queues(t)
    ]
    return {
        "subscriptions": subscriptions,
        "queues": queues,
        "declare_queues_per_s": round(queues / per_declare, 1),
        "declare_queues_per_s_one_policy_vhost": round(queues / one_declare, 1),
        "one_policy_s": round(one_policy, 3),
        "per_queue_policies_s": round(sum(each), 1),
        "first_policy_s": round(each[0], 3),
        "last_policy_s": round(each[-1], 3),
    }


def table_rows(result: dict[str, Any]) -> list[Row]:
    n, queues = result["subscriptions"], result["queues"]
    per, one = result["per_queue_policies_s"], result["one_policy_s"]
    return [
        (
            f"broker: {n} subscriptions' {queues} quorum queues declared",
            f"{result['declare_queues_per_s']:,.0f} queues/s",
            "",
            "",
        ),
        (
            f"broker: {n} per-queue delivery-limit policies / one vhost-wide policy",
            f"{per / max(one, 0.001):,.0f}x ({per:,.1f} s vs {one:.2f} s; last PUT {result['last_policy_s']:.2f} s)",
            "",
            "",
        ),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy-subscriptions", type=int, default=100, help="policies: subscriptions' worth")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, rabbitmq.running(Path(tmp) / "rabbitmq") as broker:
        print(json.dumps(run(broker, args.subscriptions), indent=2))


if __name__ == "__main__":
    main()
