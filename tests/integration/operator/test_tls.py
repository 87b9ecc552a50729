"""The operator reconciles through a SyncBroker whose Secret says amqps:// and whose CA comes from
``tls.caSecretRef``; with a CA that did not sign the broker's certificate it reports a clear condition and
keeps running (issue 9 item 8). The broker is the harness's TLS node (``tls_broker``), not the shared one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opkit import CONVERGE, GROUP, VERSION, Kit, Management, wait_for

from harness import pki, rabbitmq


def _tls_syncbroker(kit: Kit, cluster: str, name: str, broker: rabbitmq.Broker, ca_pem: str) -> None:
    assert broker.amqps_url and broker.management_tls_url
    kit.create_secret(cluster, name=f"{name}-uri", uri=broker.amqps_url, managementUri=broker.management_tls_url)
    kit.create_secret(cluster, name=f"{name}-ca", **{"ca.crt": ca_pem})
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SyncBroker",
        "metadata": {"name": name},
        "spec": {
            "secretRef": {"name": f"{name}-uri"},
            "exchange": kit.exchange,
            "tls": {"caSecretRef": {"name": f"{name}-ca", "key": "ca.crt"}},
        },
    }
    kit.custom(cluster).create_namespaced_custom_object(GROUP, VERSION, kit.namespace, "syncbrokers", body)


def _syncbroker_condition(kit: Kit, cluster: str, name: str, type_: str) -> dict[str, Any]:
    obj = kit.custom(cluster).get_namespaced_custom_object(GROUP, VERSION, kit.namespace, "syncbrokers", name)
    return kit.condition(obj, type_)


def test_subscription_over_amqps_with_the_ca_is_ready(kit: Kit, tls_broker: rabbitmq.Broker) -> None:
    assert tls_broker.ca_pem
    _tls_syncbroker(kit, "east", "tls", tls_broker, tls_broker.ca_pem)
    kit.create_subscription("east", "orders", ["order.created"], broker="tls")
    kit.wait_synced("east", "orders")
    wait_for(lambda: _syncbroker_condition(kit, "east", "tls", "Ready").get("status") == "True", CONVERGE, "SyncBroker")
    on_tls_broker = Management(tls_broker.management_url)
    queue = kit.queue_name("east", "orders")
    assert queue in on_tls_broker.queues(queue)
    assert kit.key("order.created") in on_tls_broker.bindings(kit.exchange, queue)
    kit.delete_subscription("east", "orders")
    kit.wait_gone("east", "orders")
    assert queue not in on_tls_broker.queues(queue)
    on_tls_broker.delete_exchange(kit.exchange)


def test_a_wrong_ca_gives_a_clear_condition_not_a_crash(kit: Kit, tls_broker: rabbitmq.Broker, tmp_path: Path) -> None:
    other_ca = pki.generate_broker(tmp_path / "other", ca_name="not-the-broker-ca").ca_cert.read_text()
    _tls_syncbroker(kit, "east", "wrongca", tls_broker, other_ca)
    kit.create_subscription("east", "orders", ["order.created"], broker="wrongca")
    obj = kit.wait_condition("east", "orders", "BrokerReachable", "False", reason="BrokerUnreachable")
    ready = kit.condition(obj, "Ready")
    assert ready["status"] == "False"
    assert "CERTIFICATE_VERIFY_FAILED" in ready["message"]
    reachable = wait_for(
        lambda: (
            _syncbroker_condition(kit, "east", "wrongca", "BrokerReachable").get("status") == "False"
            and _syncbroker_condition(kit, "east", "wrongca", "BrokerReachable")
        ),
        CONVERGE,
        "SyncBroker BrokerReachable=False",
    )
    assert "CERTIFICATE_VERIFY_FAILED" in reachable["message"]
    assert "guest" not in reachable["message"] and "guest" not in ready["message"]
