"""Reconciling a SyncBroker: reachable, holding the shared exchange, and failures read by the same table."""

from __future__ import annotations

import pytest
from opscene import NS, Scene, condition, reasons

from rabbitsync.amqp.fake import FakeExchange
from rabbitsync.transport.errors import AccessRefused

pytestmark = pytest.mark.unit


def test_reachable_broker_gets_the_exchange_and_is_ready() -> None:
    scene = Scene.ready()
    outcome = scene.reconcile_broker()
    assert condition(outcome, "BrokerReachable") == ("True", "Connected")
    assert condition(outcome, "Ready") == ("True", "ExchangeReady")
    # Issue 10: the exchange also gets its alternate exchange (by policy) for unroutable events.
    # Issue 12: and the trace stream, which `rabbitsync trace` reads, with its exchange.
    assert scene.broker.exchanges == {
        "rabbitsync.events": FakeExchange("topic"),
        "rabbitsync.events.unroutable": FakeExchange("fanout"),
        "rabbitsync.events.trace": FakeExchange("topic"),
    }
    assert "rabbitsync.events.unroutable" in scene.broker.queues
    assert scene.broker.queues["rabbitsync.events.trace"].arguments["x-queue-type"] == "stream"
    assert ("rabbitsync.events.trace", "rabbitsync.events.trace", "record") in {
        (b.exchange, b.queue, b.routing_key) for b in scene.broker.bindings
    }
    assert scene.broker.policies["rabbitsync.events.unroutable"].definition == {
        "alternate-exchange": "rabbitsync.events.unroutable"
    }
    assert "unroutable events kept in queue" in outcome.status["conditions"][-1]["message"]
    assert outcome.status["observedGeneration"] == 1 and outcome.temporary_failure is None
    again = scene.reconcile_broker(status=outcome.status)
    assert again.notes == [] and "present" in again.status["conditions"][-1]["message"]


def test_exchange_of_another_type_is_reachable_but_not_ready_and_left_alone() -> None:
    scene = Scene.ready()
    scene.broker.exchanges["rabbitsync.events"] = FakeExchange("fanout")
    outcome = scene.reconcile_broker()
    assert condition(outcome, "BrokerReachable") == ("True", "Connected")
    assert condition(outcome, "Ready") == ("False", "PreconditionFailed")
    assert outcome.temporary_failure is None and scene.broker.exchanges == {"rabbitsync.events": FakeExchange("fanout")}


def test_unreachable_broker_is_retried() -> None:
    scene = Scene.ready()
    scene.broker.reachable = False
    outcome = scene.reconcile_broker()
    assert condition(outcome, "BrokerReachable") == ("False", "BrokerUnreachable")
    assert condition(outcome, "Ready") == ("False", "BrokerUnreachable")
    assert outcome.temporary_failure and set(reasons(outcome.notes)) == {"BrokerUnreachable"}


def test_access_refused_is_permanent() -> None:
    scene = Scene.ready()
    scene.broker_error = AccessRefused("refused")
    outcome = scene.reconcile_broker()
    assert condition(outcome, "BrokerReachable") == ("False", "AccessRefused")
    assert outcome.temporary_failure is None


def test_missing_secret_says_nothing_about_reachability_and_is_retried() -> None:
    scene = Scene.ready()
    del scene.kube.secrets[NS, "rabbitmq"]
    outcome = scene.reconcile_broker()
    assert condition(outcome, "BrokerReachable") == ("Unknown", "SecretNotFound")
    assert condition(outcome, "Ready") == ("False", "SecretNotFound")
    assert outcome.temporary_failure and scene.resolved == []


def test_forbidden_secret_is_named() -> None:
    scene = Scene.ready()
    scene.kube.forbidden.add(("get", "Secret"))
    assert condition(scene.reconcile_broker(), "Ready") == ("False", "SecretForbidden")


def test_being_deleted_is_not_used() -> None:
    scene = Scene.ready()
    scene.kube.sync_brokers[NS, "default"].deleting = True
    outcome = scene.reconcile_broker()
    assert condition(outcome, "Ready") == ("False", "SyncBrokerNotFound") and scene.resolved == []


def test_invalid_uri_is_permanent() -> None:
    scene = Scene.ready()
    scene.kube.add_secret(NS, "rabbitmq", uri="amqp://")
    outcome = scene.reconcile_broker()
    assert condition(outcome, "BrokerReachable") == ("False", "InvalidBrokerURI")
    assert outcome.temporary_failure is None


def test_management_uri_is_taken_from_the_secret() -> None:
    scene = Scene.ready()
    scene.kube.add_secret(NS, "rabbitmq", uri="amqp://u:p@b:5672/", managementUri="https://u:p@mgmt:443/api-root")
    scene.reconcile_broker()
    assert scene.resolved[-1].endpoint.management().base_url == "https://mgmt:443/api-root"
