"""The operator's kept AMQP connection against a real RabbitMQ: reused, and replaced after the broker closed it."""

from __future__ import annotations

import time

import pytest

from rabbitsync.amqp import BrokerEndpoint, ConnectionPool, RabbitBroker, observe_and_sync
from rabbitsync.api import SyncSubscriptionSpec
from rabbitsync.topology.desired import desired_topology
from rabbitsync.topology.diff import teardown

pytestmark = pytest.mark.integration


def _operator_connections(broker) -> int:  # type: ignore[no-untyped-def]
    found = broker.management_get("/api/connections?columns=client_properties")
    return sum(1 for c in found if (c.get("client_properties") or {}).get("connection_name") == "rabbitsync-operator")


def test_many_syncs_share_one_connection_and_survive_the_broker_closing_it(broker, uid: str) -> None:  # type: ignore[no-untyped-def]
    pool = ConnectionPool()
    rabbit = RabbitBroker(BrokerEndpoint(broker.amqp_url, broker.management_url), connections=pool)
    spec = SyncSubscriptionSpec.model_validate({"service": "orders", "events": ["a.created"]})
    topologies = [
        desired_topology(cluster=f"k{uid}", namespace="shop", subscription=f"s{i}", spec=spec, exchange=f"x.{uid}")
        for i in range(6)
    ]
    try:
        for topology in topologies[:3]:
            assert observe_and_sync(rabbit, topology).verified
        assert pool.opened == 1
        # The management plugin lists connections with a delay.
        deadline = time.monotonic() + 15
        while _operator_connections(broker) != 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _operator_connections(broker) == 1

        broker.close_all_connections()
        for topology in topologies[3:]:
            assert observe_and_sync(rabbit, topology).verified
        assert pool.opened == 2, "replaced once, then reused"
    finally:
        for topology in topologies:
            rabbit.apply(teardown(rabbit.observe(topology.exchange, topology.main_queue.name)))
        pool.close()
