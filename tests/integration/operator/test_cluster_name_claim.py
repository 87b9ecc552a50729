"""Two clusters' operators under one cluster name on the real broker: the second is told, nothing is merged.

The session's operators (east, west) are stopped for this test so that only the two under test
reconcile its SyncBrokers; both watch only the test's namespace and are restarted afterwards. Their
install ids are the real ones: the UIDs of each cluster's ``kube-system`` Namespace.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opkit import CONVERGE, GROUP, VERSION, Kit, Management, wait_for

from harness import operators

pytestmark = pytest.mark.integration


@pytest.fixture
def twins(operators_running, clusters, tmp_path: Path, namespace: str, uid: str) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """An operator per cluster, both named ``dup-<uid>`` and watching only ``namespace``."""
    fleet = operators_running
    for name in list(fleet):
        fleet.stop(name)
    env = {**fleet.env, "RABBITSYNC_CLUSTER": f"dup-{uid}", "RABBITSYNC_NAMESPACES": namespace}
    started: dict[str, operators.OperatorProcess] = {}
    try:
        for name in ("east", "west"):
            started[name] = operators.start(name, clusters[name].kubeconfig, tmp_path, env=env, token_duration="1h")
        yield started
    finally:
        for op in started.values():
            operators.stop(op)
        for name in clusters:
            fleet.start(name)


def _syncbroker(kit: Kit, cluster: str) -> dict[str, Any]:
    return kit.custom(cluster).get_namespaced_custom_object(GROUP, VERSION, kit.namespace, "syncbrokers", "default")


def _condition(obj: dict[str, Any], type_: str) -> tuple[str, str, str] | None:
    found = next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), None)
    return (found["status"], found["reason"], found.get("message", "")) if found else None


def _kube_system_uid(clusters, name: str) -> str:  # type: ignore[no-untyped-def]
    return str(clusters[name].core.read_namespace("kube-system").metadata.uid)


def test_a_second_cluster_under_the_same_name_is_reported_not_merged(twins, clusters, broker, namespace, uid) -> None:  # type: ignore[no-untyped-def]
    kit = Kit(clusters, broker, namespace, uid)
    mgmt = Management(broker.management_url)
    claim = f"rabbitsync.cluster.dup-{uid}@/"
    east_id, west_id = _kube_system_uid(clusters, "east"), _kube_system_uid(clusters, "west")
    try:
        kit.setup_broker("east", managementUri=broker.management_url)
        wait_for(
            lambda: (_condition(_syncbroker(kit, "east"), "ClusterNameClaimed") or ("",))[0] == "True",
            CONVERGE,
            "east claims its name",
        )
        assert mgmt.call("GET", f"/api/global-parameters/{mgmt.q(claim)}")["value"]["installId"] == east_id

        kit.setup_broker("west", managementUri=broker.management_url)
        conflict = wait_for(
            lambda: _condition(_syncbroker(kit, "west"), "ClusterNameClaimed"), CONVERGE, "west's claim checked"
        )
        assert conflict[:2] == ("False", "ClusterNameConflict") and east_id in conflict[2] and west_id in conflict[2]
        assert _condition(_syncbroker(kit, "west"), "Ready")[:2] == ("False", "ClusterNameConflict")  # type: ignore[index]

        def events() -> set[tuple[str, str]]:
            found = kit.core("west").list_namespaced_event(
                namespace, field_selector="involvedObject.kind=SyncBroker,involvedObject.name=default"
            )
            return {(e.type, e.reason) for e in found.items}

        # kopf posts Events from a queue of its own, a moment after the status.
        wait_for(lambda: ("Warning", "ClusterNameConflict") in events(), CONVERGE, f"the Warning Event; {events()}")
        assert "claimed by another install" in twins["west"].log.read_text()

        # Never taken over: the first install keeps the name, and stays Ready, resync after resync.
        assert twins["east"].alive()
        assert mgmt.call("GET", f"/api/global-parameters/{mgmt.q(claim)}")["value"]["installId"] == east_id
        assert _condition(_syncbroker(kit, "east"), "Ready")[:2] == ("True", "ExchangeReady")  # type: ignore[index]

        # The operator's metrics saw it: one SyncBroker not Ready in west.
        with urllib.request.urlopen(twins["west"].metrics_url, timeout=5) as resp:
            text = resp.read().decode()
        assert 'rabbitsync_operator_managed_objects{kind="syncbrokers",ready="False"} 1.0' in text
        assert any(
            line.startswith("rabbitsync_operator_reconciles_total{")
            and 'kind="syncbrokers"' in line
            and 'result="not_ready"' in line
            for line in text.splitlines()
        )
    finally:
        # The SyncBrokers go with the namespace (they carry no finalizer); the claim and exchange are ours to remove.
        mgmt.call("DELETE", f"/api/global-parameters/{mgmt.q(claim)}")
        kit.cleanup()
