"""Broker layer without a broker: endpoint parsing, error translation, and the sync flow on the fake."""

from __future__ import annotations

import pytest

import rabbitsync.amqp as amqp
from rabbitsync.amqp import (
    AccessRefused,
    BrokerEndpoint,
    BrokerUnreachable,
    FakeBroker,
    InvalidEndpoint,
    NotFound,
    PreconditionFailed,
    delete_topology,
    observe_and_sync,
)
from rabbitsync.amqp.fake import FakeQueue
from rabbitsync.api import SyncSubscriptionSpec
from rabbitsync.operator.subscription import status_fields
from rabbitsync.topology.desired import desired_topology
from rabbitsync.topology.model import Binding, Topology

pytestmark = pytest.mark.unit


def _topology(events: list[str], cluster: str = "east", **spec: object) -> Topology:
    return desired_topology(
        cluster=cluster,
        namespace="shop",
        subscription="orders",
        spec=SyncSubscriptionSpec.model_validate({"service": "orders", "events": events} | spec),
        exchange="rabbitsync.events",
    )


def test_management_api_is_derived_from_the_amqp_uri() -> None:
    api = BrokerEndpoint("amqp://u%40x:p%3Aw@rabbit.example:5672/prod").management()
    assert (api.base_url, api.username, api.password) == ("http://rabbit.example:15672", "u@x", "p:w")
    assert BrokerEndpoint("amqps://u:p@rabbit.example/").management().base_url == "https://rabbit.example:15671"


def test_explicit_management_uri_wins_and_borrows_missing_credentials() -> None:
    endpoint = BrokerEndpoint("amqp://u:p@rabbit/", "https://mgmt.example:443/rabbitmq/")
    api = endpoint.management()
    assert (api.base_url, api.username, api.password) == ("https://mgmt.example:443/rabbitmq", "u", "p")


def test_vhost_from_path_and_default() -> None:
    assert BrokerEndpoint("amqp://rabbit/%2Fsync").vhost == "/sync"
    assert BrokerEndpoint("amqp://rabbit").vhost == "/"


def test_repr_hides_passwords() -> None:
    endpoint = BrokerEndpoint("amqp://u:secret@rabbit:5672/")
    assert "secret" not in repr(endpoint)


@pytest.mark.parametrize("uri", ["http://rabbit/", "amqp://rabbit:99999/", "amqp:///nohost"])
def test_unusable_uris_are_invalid_endpoints(uri: str) -> None:
    with pytest.raises(InvalidEndpoint) as caught:
        BrokerEndpoint(uri)
    assert caught.value.permanent


def test_only_unreachable_is_temporary() -> None:
    assert not BrokerUnreachable.permanent
    assert AccessRefused.permanent and PreconditionFailed.permanent and NotFound.permanent


def test_first_sync_creates_everything_and_is_not_drift() -> None:
    broker, topo = FakeBroker(), _topology(["a", "b"])
    result = observe_and_sync(broker, topo)
    assert result.verified and result.drift == () and result.changes
    assert set(broker.queues) == {q.name for q in topo.queues}
    assert broker.bindings == set(topo.bindings)
    assert status_fields(result)["queue"] == topo.main_queue.name


def test_in_sync_broker_is_not_touched() -> None:
    broker, topo = FakeBroker(), _topology(["a"])
    observe_and_sync(broker, topo)
    broker.applied.clear()
    result = observe_and_sync(broker, topo, previously_synced=True)
    assert broker.applied == [] and result.changes == () and result.verified


def test_drift_is_repaired_and_reported() -> None:
    broker, topo = FakeBroker(), _topology(["a", "b"])
    observe_and_sync(broker, topo)
    del broker.queues[topo.dead_letter_queue.name]
    broker.bindings.discard(Binding(topo.exchange, topo.main_queue.name, "shop.b"))
    result = observe_and_sync(broker, topo, previously_synced=True)
    assert result.verified and len(result.drift) == 2


def test_counts_come_from_main_queue_and_dlq() -> None:
    broker, topo = FakeBroker(), _topology(["a"])
    observe_and_sync(broker, topo)
    broker.queues[topo.main_queue.name].messages = 7
    broker.queues[topo.main_queue.name].consumers = 2
    broker.queues[topo.dead_letter_queue.name].messages = 1
    status = status_fields(observe_and_sync(broker, topo))
    assert (status["queueDepth"], status["consumers"], status["deadLettered"]) == (7, 2, 1)


def test_no_consumer_in_the_statistics_is_checked_with_the_queue_itself() -> None:
    broker, topo = FakeBroker(), _topology(["a"])
    observe_and_sync(broker, topo)
    main = broker.queues[topo.main_queue.name]
    main.consumers, main.reported_consumers = 1, 0  # attached after the management API's last sample
    assert observe_and_sync(broker, topo).consumers == 1
    main.consumers = 0
    assert observe_and_sync(broker, topo).consumers == 0


def test_conflicting_arguments_are_reported_and_not_ready() -> None:
    topo = _topology(["a"])
    broker = FakeBroker(queues={topo.main_queue.name: FakeQueue({"x-queue-type": "classic"})})
    result = observe_and_sync(broker, topo)
    assert not result.verified and result.conflicts


def test_unreachable_broker_raises() -> None:
    with pytest.raises(BrokerUnreachable):
        observe_and_sync(FakeBroker(reachable=False), _topology(["a"]))


def test_deleting_one_cluster_leaves_the_other_and_the_exchange() -> None:
    broker = FakeBroker()
    east, west = _topology(["a"], "east"), _topology(["a"], "west")
    observe_and_sync(broker, east)
    observe_and_sync(broker, west)
    delete_topology(broker, east)
    assert set(broker.queues) == {q.name for q in west.queues}
    assert "rabbitsync.events" in broker.exchanges


def test_all_is_complete() -> None:
    modules = {"admin", "claim", "connections", "endpoint", "errors", "fake", "identity", "management", "port"}
    modules |= {"backfill", "rabbit", "snapshot", "sync", "unroutable", "users"}
    public = {name for name in vars(amqp) if not name.startswith("_")} - modules
    assert public == set(amqp.__all__)


def test_ensure_exchange_declares_a_missing_exchange_once():
    broker = FakeBroker()
    assert amqp.sync.ensure_exchange(broker, "rabbitsync.events") == "declared exchange rabbitsync.events"
    assert broker.exchanges == {"rabbitsync.events": "topic"}
    assert amqp.sync.ensure_exchange(broker, "rabbitsync.events") == "exchange rabbitsync.events present"


def test_ensure_exchange_refuses_an_exchange_of_another_type():
    broker = FakeBroker()
    broker.exchanges["rabbitsync.events"] = "fanout"
    with pytest.raises(PreconditionFailed, match="fanout"):
        amqp.sync.ensure_exchange(broker, "rabbitsync.events")
    assert broker.exchanges == {"rabbitsync.events": "fanout"}
