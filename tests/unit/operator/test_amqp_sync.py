"""Broker layer without a broker: endpoint parsing, error translation, and the sync flow on the fake."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

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
from rabbitsync.amqp.admin import BrokerAdmin
from rabbitsync.amqp.fake import FakeExchange, FakeQueue
from rabbitsync.amqp.management import ManagementClient
from rabbitsync.api import SyncSubscriptionSpec
from rabbitsync.operator.subscription import status_fields
from rabbitsync.topology import naming
from rabbitsync.topology.desired import desired_topology
from rabbitsync.topology.diff import Plan
from rabbitsync.topology.model import Binding, Exchange, ObservedExchange, Topology

pytestmark = pytest.mark.unit


def _topology(events: list[str], cluster: str = "east", subscription: str = "orders", **spec: object) -> Topology:
    return desired_topology(
        cluster=cluster,
        namespace="shop",
        subscription=subscription,
        spec=SyncSubscriptionSpec.model_validate({"service": "orders", "events": events} | spec),
        exchange="rabbitsync.events",
    )


def _exchanges(topo: Topology) -> dict[str, FakeExchange]:
    return {e.name: FakeExchange(e.type, dict(e.arguments)) for e in topo.exchanges}


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
    assert broker.exchanges == {"rabbitsync.events": FakeExchange("topic"), **_exchanges(topo)}
    assert status_fields(result)["queue"] == topo.main_queue.name


def test_a_second_subscription_of_the_cluster_finds_the_shared_objects_in_place() -> None:
    broker, orders, billing = FakeBroker(), _topology(["a"]), _topology(["a"], subscription="billing")
    observe_and_sync(broker, orders)
    result = observe_and_sync(broker, billing)
    retries = naming.retries_exchange("east")
    main = billing.main_queue.name
    assert result.verified and set(result.changes) == {
        f"declared queue {main}",
        f"declared queue {billing.dead_letter_queue.name}",
        f"bound binding rabbitsync.events -> {main} (shop.a)",
        f"bound binding rabbitsync.events -> {main} (shop.#.@backfill.{main})",
        f"bound binding {retries} -> {main} ({main})",
    }


def test_shared_objects_are_observed_by_name_never_by_a_subscriptions_pattern() -> None:
    broker, topo = FakeBroker(), _topology(["a"])
    observe_and_sync(broker, topo)
    main, shared = topo.main_queue.name, [q.name for q in topo.shared_queues]
    own = broker.observe(topo.exchange, main)
    assert set(own.queues) == {main, topo.dead_letter_queue.name} and own.exchanges == {}
    found = broker.observe(topo.exchange, main, shared=shared, exchanges=[e.name for e in topo.exchanges])
    assert set(found.queues) == {q.name for q in topo.queues} and found.bindings == topo.bindings
    assert {n: (e.type, dict(e.arguments)) for n, e in found.exchanges.items()} == {
        e.name: (e.type, dict(e.arguments)) for e in topo.exchanges
    }
    assert broker.observe(topo.exchange, main, exchanges=["missing"]).exchanges == {}, "absent, not an error"


def test_a_shared_delay_queue_or_exchange_deleted_out_of_band_is_restored_as_drift() -> None:
    broker, topo = FakeBroker(), _topology(["a"])
    observe_and_sync(broker, topo)
    delay = topo.retry_queues[0].name
    del broker.queues[delay]
    broker.bindings = {b for b in broker.bindings if b.queue != delay}
    del broker.exchanges[naming.retries_exchange("east")]
    result = observe_and_sync(broker, topo, previously_synced=True)
    assert result.verified
    assert f"declared queue {delay}" in result.drift
    assert f"declared exchange {naming.retries_exchange('east')}" in result.drift


def test_a_shared_exchange_with_other_arguments_is_a_conflict_never_redeclared() -> None:
    topo = _topology(["a"])
    retries = naming.retries_exchange("east")
    broker = FakeBroker(exchanges={retries: FakeExchange("direct")})  # no alternate exchange
    result = observe_and_sync(broker, topo)
    assert not result.verified and [c.split(":")[0] for c in result.conflicts] == [f"exchange {retries}"]
    assert broker.exchanges[retries] == FakeExchange("direct")


@pytest.mark.parametrize("other", [FakeExchange("fanout", {"alternate-exchange": "o"}), FakeExchange("direct")])
def test_the_fake_refuses_to_redeclare_an_exchange_of_another_type_or_arguments(other: FakeExchange) -> None:
    broker = FakeBroker(exchanges={"x": other})
    with pytest.raises(PreconditionFailed):
        broker.apply(Plan(declare_exchanges=(Exchange("x", "direct", {"alternate-exchange": "o"}),)))
    assert broker.exchanges == {"x": other}
    for _ in range(2):
        broker.apply(Plan(declare_exchanges=(Exchange("y", "direct", {"alternate-exchange": "o"}),)))
    assert broker.exchanges["y"] == FakeExchange("direct", {"alternate-exchange": "o"}), "the same again: a no-op"


class _ManagementApi(BaseHTTPRequestHandler):
    """A management API serving ``found`` (path -> JSON, the query left out) and 404 otherwise."""

    found: dict[str, Any] = {}
    asked: list[str] = []

    def do_GET(self) -> None:
        type(self).asked.append(self.path)
        path = unquote(urlsplit(self.path).path)
        body = json.dumps(self.found[path]).encode() if path in self.found else b""
        self.send_response(200 if path in self.found else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def management_api() -> Iterator[tuple[ManagementClient, type[_ManagementApi]]]:
    handler = type("Api", (_ManagementApi,), {"found": {}, "asked": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"127.0.0.1:{server.server_port}"
    try:
        yield ManagementClient(BrokerEndpoint(f"amqp://u:p@{address}/prod", f"http://{address}")), handler
    finally:
        server.shutdown()


def test_the_management_api_finds_shared_queues_and_exchanges_by_name_with_their_arguments(
    management_api: tuple[ManagementClient, type[_ManagementApi]],
) -> None:
    client, api = management_api
    topo = _topology(["a"], retry={"maxAttempts": 2, "initialBackoffMs": 500})
    main, delay, retries = topo.main_queue.name, topo.retry_queues[0].name, naming.retries_exchange("east")
    alternate = {"alternate-exchange": naming.orphaned_retries_name("east")}
    api.found = {
        "/api/queues/prod": {"page_count": 1, "items": [{"name": main, "arguments": {}}]},
        f"/api/queues/prod/{main}/bindings": [{"source": retries, "routing_key": main, "destination_type": "queue"}],
        f"/api/queues/prod/{delay}": {"name": delay, "arguments": {"x-message-ttl": 500}, "messages": 2},
        f"/api/queues/prod/{delay}/bindings": [{"source": delay, "routing_key": "#", "destination_type": "queue"}],
        f"/api/exchanges/prod/{retries}": {"name": retries, "type": "direct", "durable": True, "arguments": alternate},
    }
    observed = client.observe(topo.exchange, main, shared=[delay], exchanges=[retries, "missing"])
    assert set(observed.queues) == {main, delay} and observed.queues[delay].messages == 2
    assert observed.bindings == {Binding(retries, main, main), Binding(delay, delay, "#")}
    assert observed.exchanges == {retries: ObservedExchange(retries, "direct", True, alternate)}
    assert observed.exchange is None
    by_name = client.observe(topo.exchange, main, [main, delay])
    assert by_name.queues == {delay: observed.queues[delay]} and by_name.exchanges == {}
    api.found = {
        "/api/exchanges/prod": [{"name": retries, "type": "direct", "durable": True, "arguments": alternate}],
        "/api/bindings/prod": [],
        "/api/queues/prod": {"page_count": 1, "items": []},
        "/api/policies/prod": [],
    }
    listing = client.snapshot()
    assert listing.exchanges == {retries: ObservedExchange(retries, "direct", True, alternate)}
    [exchanges] = [q for q in api.asked if q.startswith("/api/exchanges/prod?")]
    assert parse_qs(urlsplit(exchanges).query)["columns"] == ["name,type,durable,arguments"]


class _Recorder:
    """A connection that records the AMQP methods a plan calls, in order (``Connections`` and ``Declarations``)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, object]]] = []

    def run(self, endpoint: object, timeouts: object, work: Callable[[Any], Any]) -> Any:
        return work(self)

    def __getattr__(self, method: str) -> Callable[..., None]:
        return lambda name, *_, **kwargs: self.calls.append((method, name, kwargs))


def test_the_shared_exchanges_are_declared_with_their_arguments_before_the_queues_dead_lettering_into_them() -> None:
    topo = _topology(["a"], retry={"maxAttempts": 2, "initialBackoffMs": 500})
    recorder = _Recorder()
    BrokerAdmin(BrokerEndpoint("amqp://rabbit/"), connections=recorder).apply(
        Plan(declare_exchange=topo.exchange, declare_exchanges=topo.exchanges, declare_queues=topo.queues)
    )
    methods = [(method, name) for method, name, _ in recorder.calls]
    assert methods == [
        ("exchange_declare", topo.exchange),
        *(("exchange_declare", e.name) for e in topo.exchanges),
        *(("queue_declare", q.name) for q in topo.queues),
    ]
    retries = naming.retries_exchange("east")
    [(_, _, declared)] = [call for call in recorder.calls if call[1] == retries]
    assert declared == {
        "exchange_type": "direct",
        "durable": True,
        "arguments": {"alternate-exchange": naming.orphaned_retries_name("east")},
    }


def test_an_older_releases_own_delay_queue_is_retired_once_empty_and_publishers_gone() -> None:
    """The migration of a topology an older release left: ``<queue>.retry.<d>ms`` is desired no more."""
    broker, topo = FakeBroker(), _topology(["a"])
    observe_and_sync(broker, topo)
    legacy = naming.retry_queue_name(topo.main_queue.name, 1000)
    broker.queues[legacy] = FakeQueue({"x-queue-type": "quorum", "x-message-ttl": 1000}, messages=2)
    waiting = observe_and_sync(broker, topo, retire=False)
    assert waiting.retiring == (legacy,) and waiting.verified, "an old pod may still publish into it"
    holding = observe_and_sync(broker, topo)
    assert holding.kept_not_empty == (legacy,) and holding.verified and legacy in broker.queues
    broker.queues[legacy].messages = 0
    gone = observe_and_sync(broker, topo)
    assert gone.changes == (f"deleted queue {legacy}",) and legacy not in broker.queues
    assert {q.name for q in topo.shared_queues} <= set(broker.queues), "no shared queue goes with it"


def test_a_schedule_change_deletes_no_shared_delay_queue() -> None:
    broker = FakeBroker()
    before = _topology(["a"], retry={"maxAttempts": 2, "initialBackoffMs": 1000})
    after = _topology(["a"], retry={"maxAttempts": 2, "initialBackoffMs": 500})
    observe_and_sync(broker, before)
    result = observe_and_sync(broker, after)
    assert result.verified and not any(c.startswith("deleted") for c in result.changes)
    assert {before.retry_queues[0].name, after.retry_queues[0].name} <= set(broker.queues)


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
    assert set(broker.queues) == {q.name for q in west.queues} | {q.name for q in east.shared_queues}
    assert "rabbitsync.events" in broker.exchanges


def test_deleting_a_subscription_never_deletes_what_its_cluster_shares() -> None:
    broker, orders, billing = FakeBroker(), _topology(["a"]), _topology(["a"], subscription="billing")
    observe_and_sync(broker, orders)
    observe_and_sync(broker, billing)
    deleted = delete_topology(broker, orders)
    assert set(deleted) == {f"deleted queue {orders.main_queue.name}", f"deleted queue {orders.dead_letter_queue.name}"}
    assert set(broker.queues) == {q.name for q in billing.queues}
    assert broker.exchanges == {"rabbitsync.events": FakeExchange("topic"), **_exchanges(billing)}
    assert broker.bindings == set(billing.bindings), "its own binding to the retries exchange went with its queue"
    assert observe_and_sync(broker, billing, previously_synced=True).changes == ()


def test_all_is_complete() -> None:
    modules = {"admin", "claim", "connections", "endpoint", "errors", "fake", "identity", "management", "port"}
    modules |= {"backfill", "rabbit", "shared", "snapshot", "sync", "unroutable", "users"}
    public = {name for name in vars(amqp) if not name.startswith("_")} - modules
    assert public == set(amqp.__all__)


def test_ensure_exchange_declares_a_missing_exchange_once():
    broker = FakeBroker()
    assert amqp.sync.ensure_exchange(broker, "rabbitsync.events") == "declared exchange rabbitsync.events"
    assert broker.exchanges == {"rabbitsync.events": FakeExchange("topic")}
    assert amqp.sync.ensure_exchange(broker, "rabbitsync.events") == "exchange rabbitsync.events present"


def test_ensure_exchange_refuses_an_exchange_of_another_type():
    broker = FakeBroker()
    broker.exchanges["rabbitsync.events"] = FakeExchange("fanout")
    with pytest.raises(PreconditionFailed, match="fanout"):
        amqp.sync.ensure_exchange(broker, "rabbitsync.events")
    assert broker.exchanges == {"rabbitsync.events": FakeExchange("fanout")}
