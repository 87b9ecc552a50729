"""The operator as it runs in production, one per cluster, under the manifests' RBAC.

Session fixture ``operators_running``: per cluster, the harness applies the CRDs and ``manifests/rbac``, gets a
ServiceAccount token from the TokenRequest API and starts ``rabbitsync-operator`` as a subprocess with a
kubeconfig holding only that token (cluster-wide, so the ClusterRole is what is tested). Every test
shares them; a failing test gets the tail of both operators' logs in its report.

Function fixture ``kit``: one test's view of both clusters and the broker, with a unique exchange and
the namespace's broker-side names, polling helpers with explicit deadlines, and cleanup.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import NotFoundException
from opkit import DELETE_ATTEMPTS, GROUP, MAX_BACKOFF_SECONDS, RESYNC_SECONDS, VERSION, Kit

from harness import operators


class Fleet(dict[str, operators.OperatorProcess]):
    """One running operator per cluster, by cluster name; a test may stop and start one."""

    def __init__(self, clusters: dict[str, Any], directory: Path) -> None:
        super().__init__()
        self.clusters, self.directory = clusters, directory
        self.env = {
            "RABBITSYNC_RESYNC_SECONDS": str(RESYNC_SECONDS),
            "RABBITSYNC_DELETE_ATTEMPTS": str(DELETE_ATTEMPTS),
            "RABBITSYNC_MAX_BACKOFF_SECONDS": str(MAX_BACKOFF_SECONDS),
            "RABBITSYNC_NAMESPACES": "",
            "RABBITSYNC_LOG_FORMAT": "text",
        }

    def start(self, name: str) -> operators.OperatorProcess:
        kubeconfig = self.clusters[name].kubeconfig
        self[name] = operators.start(name, kubeconfig, self.directory, env=self.env, token_duration="2h")
        return self[name]

    def stop(self, name: str) -> None:
        operators.stop(self[name], self.directory)

    def stop_all(self) -> None:
        for name in list(self):
            self.stop(name)


SEAT = "the operator integration tests' local operators"


@pytest.fixture(scope="session")
def operators_running(clusters, broker, tmp_path_factory, operator_seat) -> Iterator[Fleet]:  # type: ignore[no-untyped-def]
    fleet = Fleet(clusters, tmp_path_factory.mktemp("operators"))
    operator_seat.take(SEAT, fleet.stop_all)
    try:
        for name in clusters:
            fleet.start(name)
        yield fleet
    finally:
        fleet.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    ops = getattr(item, "funcargs", {}).get("operators_running")
    if report.failed and ops:
        for op in ops.values():
            report.sections.append((f"operator {op.cluster} log", op.tail(80)))
    return report


@pytest.fixture
def kit(operators_running, operator_seat, clusters, broker, namespace: str, uid: str) -> Iterator[Kit]:  # type: ignore[no-untyped-def]
    if not operator_seat.held_by(SEAT):
        # The session's order (tests/conftest.py) runs these before the e2e suite; only a reordering
        # gets here, and the fleet is stopped then.
        pytest.fail(f"{operator_seat.holder} took over the clusters and stopped this suite's operators", pytrace=False)
    k = Kit(clusters, broker, namespace, uid)
    yield k
    # Subscriptions and publications first, while the operator still runs, so the namespace is not
    # held by finalizers.
    for cluster in clusters:
        for pub in k.custom(cluster).list_namespaced_custom_object(GROUP, VERSION, namespace, "syncpublications")[
            "items"
        ]:
            k.delete_publication(cluster, pub["metadata"]["name"])
        items = k.custom(cluster).list_namespaced_custom_object(GROUP, VERSION, namespace, "syncsubscriptions")
        for obj in items["items"]:
            k.delete_subscription(cluster, obj["metadata"]["name"])
        for obj in items["items"]:
            try:
                k.wait_gone(cluster, obj["metadata"]["name"], timeout=30)
            except AssertionError:
                # Do not leave a namespace stuck behind a finalizer nobody will release. The cleanup may
                # still finish meanwhile: kopf holds a deletion up to its consistency timeout (60 s,
                # handlers.CONSISTENCY_TIMEOUT_SECONDS) after a status patch that changed nothing.
                with contextlib.suppress(NotFoundException):
                    k.custom(cluster).patch_namespaced_custom_object(
                        GROUP,
                        VERSION,
                        namespace,
                        "syncsubscriptions",
                        obj["metadata"]["name"],
                        {"metadata": {"finalizers": None}},
                    )
    k.cleanup()
    dead = [op.cluster for op in operators_running.values() if not op.alive()]
    assert not dead, f"operator(s) {dead} exited during the test"
