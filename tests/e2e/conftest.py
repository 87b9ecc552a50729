"""The e2e deployment: both overlays applied, operators and services running, one shared broker.

Locally, ``demo.deploy`` applies the manifests and the pod runner plays the kubelet, exactly as
``make demo`` does. On machines with Docker, ``hack/kind/e2e.sh`` deploys to two kind clusters and
points ``RABBITSYNC_E2E_STATE_DIR`` at a directory holding ``east.kubeconfig``, ``west.kubeconfig`` and
``services.json`` (port-forwarded base URLs): the same tests then run against kind.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import Deployment

from harness import demo, podrunner, rabbitmq

# Apart from the demo's addresses, so the suite can run while `make demo` is up.
IP_PREFIXES = {"east": "127.0.3", "west": "127.0.4"}


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
    directory = tmp_path_factory.mktemp("e2e")
    kubeconfigs = {}
    for name, handle in clusters.items():
        kubeconfigs[name] = directory / f"{name}.kubeconfig"
        shutil.copy(handle.kubeconfig, kubeconfigs[name])
    vhost = f"e2e-{directory.name}"
    # RABBITSYNC_BROKER_TLS=1: the broker fixture runs a TLS node; everything then goes over amqps/https.
    tls = rabbitmq.Options.from_env().tls
    amqp_url = rabbitmq.create_vhost(broker.info, vhost, tls=tls)
    management_url = broker.info.management_tls_url if tls else None
    try:
        urls = demo.deploy(
            directory,
            kubeconfigs,
            amqp_url,
            management_url or broker.management_url,
            IP_PREFIXES,
            ca_pem=broker.info.ca_pem if tls else None,
        )
        yield Deployment(directory, kubeconfigs, urls, local=True, vhost=vhost)
    finally:
        podrunner.stop_runners(directory)
        rabbitmq.delete_vhost(broker.info, vhost)
