"""Fixtures of the CLI's integration tests: a :class:`cliscene.Scene` per test, cleaned up afterwards."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from cliscene import Scene

from harness import apt, operators
from harness.identities import Identities


@pytest.fixture(scope="session")
def graphviz() -> None:
    """``dot`` for ``topology --format svg``, installed on first use like the suites' other servers."""
    if shutil.which("dot") is None:
        apt.install("graphviz")


@pytest.fixture(scope="session")
def crds(clusters) -> None:  # type: ignore[no-untyped-def]
    """The CRDs (and the manifests' RBAC) in both clusters, as the harness installs them for the operator."""
    for handle in clusters.values():
        operators.install(handle.kubeconfig)


@pytest.fixture
def scene(crds, clusters, broker, namespace: str, uid: str) -> Iterator[Scene]:  # type: ignore[no-untyped-def]
    made = Scene(clusters, broker, namespace, uid)
    yield made
    made.cleanup()


@pytest.fixture
def kube_args(clusters) -> list[str]:  # type: ignore[no-untyped-def]
    """``--kubeconfig`` for east then west."""
    return [a for name in ("east", "west") for a in ("--kubeconfig", str(clusters[name].kubeconfig))]


@pytest.fixture
def identities(broker) -> Iterator[Identities]:  # type: ignore[no-untyped-def]
    """Broker users for the publishers and the consumers, as the operator would make them."""
    made = Identities(broker.amqp_url, broker.management_url)
    yield made
    made.delete_all()
