"""The e2e deployment: both overlays applied, operators and services running, one shared broker.

Locally, exactly as ``make demo`` does, each cluster gets a real node (kubelet, containerd, the image
built from the Dockerfile) and ``demo.deploy_on_nodes`` deploys onto it; with
``RABBITSYNC_NODES=podrunner``, ``demo.deploy`` applies the manifests and the pod runner plays the kubelet.
On machines with Docker, ``hack/kind/e2e.sh`` deploys to two kind clusters and
points ``RABBITSYNC_E2E_STATE_DIR`` at a directory holding ``east.kubeconfig``, ``west.kubeconfig`` and
``services.json`` (port-forwarded base URLs): the same tests then run against kind.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Deployment

from harness import demo, environment, nodes, podrunner, rabbitmq

# Apart from the demo's addresses, so the suite can run while `make demo` is up.
IP_PREFIXES = {"east": "127.0.3", "west": "127.0.4"}
REAL_NODES_TIMEOUT = 1800
"""pytest-timeout's limit per test on real nodes: the first test also pays for starting both nodes,
importing the image and every pod's rollout, which took over 10 minutes on the shared 2-core machine
at load 50-75 (2-3 minutes at rest)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not nodes.enabled():
        return
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            # Appended: a test's own timeout marker, if any, still wins.
            item.add_marker(pytest.mark.timeout(REAL_NODES_TIMEOUT))


@pytest.fixture(scope="session")
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    external = os.environ.get("RABBITSYNC_E2E_STATE_DIR")
    if external:
        directory = Path(external)
        kubeconfigs = {c: directory / f"{c}.kubeconfig" for c in IP_PREFIXES}
        urls = json.loads((directory / "services.json").read_text())
        yield Deployment(directory, kubeconfigs, urls, local=False)
        return
    clusters = request.getfixturevalue("clusters")
    broker = request.getfixturevalue("broker")
    # The operators of this deployment run in the clusters until the session ends: any other
    # (the operator integration tests' fleet) stops first.
    request.getfixturevalue("operator_seat").take("the e2e deployment", _cannot_hand_over)
    directory = tmp_path_factory.mktemp("e2e")
    kubeconfigs = {}
    for name, handle in clusters.items():
        kubeconfigs[name] = directory / f"{name}.kubeconfig"
        shutil.copy(handle.kubeconfig, kubeconfigs[name])
    vhost = f"e2e-{directory.name}"
    # RABBITSYNC_BROKER_TLS=1: the broker fixture runs a TLS node; everything then goes over amqps/https.
    tls = rabbitmq.Options.from_env().tls
    amqp_url = rabbitmq.create_vhost(broker.info, vhost, tls=tls)
    management_url = (broker.info.management_tls_url if tls else None) or broker.management_url
    ca_pem = broker.info.ca_pem if tls else None
    started: dict[str, nodes.Node] = {}
    try:
        if nodes.enabled():
            if tls:
                pytest.skip(
                    "RABBITSYNC_BROKER_TLS=1 runs on the pod runner only (real nodes reach the broker by its link)"
                )
            running = _dev_nodes(clusters)
            if not running:
                running = started = environment.start_nodes(directory / "nodes", kubeconfigs, broker.info)
            urls = demo.deploy_on_nodes(directory, kubeconfigs, amqp_url, broker.management_url, running)
            yield Deployment(directory, kubeconfigs, urls, local=True, vhost=vhost, nodes=running)
        else:
            urls = demo.deploy(directory, kubeconfigs, amqp_url, management_url, IP_PREFIXES, ca_pem=ca_pem)
            yield Deployment(directory, kubeconfigs, urls, local=True, vhost=vhost)
    finally:
        podrunner.stop_runners(directory)
        environment.stop_nodes(started)
        rabbitmq.delete_vhost(broker.info, vhost)


def _cannot_hand_over() -> None:
    raise RuntimeError(
        "the e2e deployment's operators run in the clusters until the session ends: tests that run"
        " operators of their own must come first (tests/conftest.py orders the layers)"
    )


def _dev_nodes(clusters: dict[str, Any]) -> dict[str, nodes.Node]:
    """The running dev environment's nodes, when the session runs on its clusters (one node per cluster)."""
    dev = environment.load()
    if dev is None or not dev.nodes:
        return {}
    mine = {str(c.kubeconfig) for c in clusters.values()}
    return dev.nodes if mine <= {c.kubeconfig for c in dev.clusters.values()} else {}
