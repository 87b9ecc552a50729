"""A SyncBroker's own status says whether this cluster reaches the broker and holds the shared exchange."""

from __future__ import annotations

from typing import Any

from opkit import CONVERGE, Kit, closed_port, wait_for

from rabbitsync.api.meta import GROUP, VERSION


def _broker(kit: Kit, name: str) -> dict[str, Any]:
    return kit.custom("east").get_namespaced_custom_object(GROUP, VERSION, kit.namespace, "syncbrokers", name)


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), {})


def test_reachable_broker_is_ready_and_the_exchange_is_declared(kit: Kit):
    kit.setup_broker("east")
    ready = wait_for(
        lambda: _condition(_broker(kit, "default"), "Ready").get("status") == "True" and _broker(kit, "default"),
        CONVERGE,
        "SyncBroker Ready",
    )
    assert _condition(ready, "BrokerReachable")["reason"] == "Connected"
    assert ready["status"]["observedGeneration"] == ready["metadata"]["generation"]
    assert kit.mgmt.call("GET", f"/api/exchanges/%2F/{kit.exchange}")["type"] == "topic"


def test_unreachable_broker_says_so(kit: Kit):
    kit.create_secret("east", name="nowhere", uri=f"amqp://guest:guest@127.0.0.1:{closed_port()}/")
    kit.create_syncbroker("east", name="nowhere", secret="nowhere")
    down = wait_for(
        lambda: (
            _condition(_broker(kit, "nowhere"), "BrokerReachable").get("status") == "False" and _broker(kit, "nowhere")
        ),
        CONVERGE,
        "SyncBroker BrokerReachable=False",
    )
    assert _condition(down, "Ready")["status"] == "False"
    assert _condition(down, "BrokerReachable")["reason"] == "BrokerUnreachable"
