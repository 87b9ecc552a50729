"""Session fixtures: real clusters (east, west) and a real RabbitMQ, started by the harness.

When the dev environment (``make dev-up``) is already running with nothing deployed on it, the tests
reuse it; otherwise they start their own in a temporary state directory, with a broker node of their
own, and stop it at the end: ``make demo`` then ``make test`` leaves the demo alone and the tests never
meet its operators. Either way it is the same harness code that ``make dev-up`` runs. Each test gets
its own namespace and unique broker names.
"""

from __future__ import annotations

import functools
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness import rabbitmq
from harness.seat import OperatorSeat

if TYPE_CHECKING:
    from kubernetes import client

    from harness import controlplane, environment

# The clusters' modules (kubernetes, the control-plane harness) are imported where clusters are
# started: the Django library's tests run in a venv without the operator's dependencies.

TESTS = Path(__file__).parent
LAYERS = ("unit", "integration", "e2e")


def _layer(item: pytest.Item) -> int:
    # Only the folder right under tests/ counts: a checkout under /home/unit/ must not make everything `unit`.
    folder = item.path.relative_to(TESTS).parts[0] if item.path.is_relative_to(TESTS) else ""
    return LAYERS.index(folder) if folder in LAYERS else len(LAYERS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The folder is the layer: tests/unit/... is `unit`, so `-m unit` never misses a test
    # (tests/unit/tooling/test_markers.py checks it). Ask for the marker itself: `item.keywords` also
    # holds every folder name of the path, so "unit" is always in it.
    for item in items:
        index = _layer(item)
        if index < len(LAYERS) and item.get_closest_marker(LAYERS[index]) is None:
            item.add_marker(getattr(pytest.mark, LAYERS[index]))
    # Fast feedback first, and the e2e deployment (in-cluster operators) only after the integration
    # tests, which run operators of their own against the same clusters.
    items.sort(key=_layer)


@dataclass
class ClusterHandle:
    """One running cluster, as the tests see it."""

    name: str
    kubeconfig: Path
    server: str
    api: client.ApiClient

    @property
    def core(self) -> client.CoreV1Api:
        from kubernetes import client

        return client.CoreV1Api(self.api)


@dataclass
class BrokerHandle:
    """The running broker plus the fault helpers the fault tests use."""

    info: rabbitmq.Broker

    @property
    def amqp_url(self) -> str:
        return self.info.amqp_url

    @property
    def management_url(self) -> str:
        return self.info.management_url

    def management_get(self, path: str) -> object:
        return rabbitmq.management_get(self.management_url, path)

    def close_all_connections(self) -> None:
        rabbitmq.close_all_connections(self.info)

    def stop(self) -> None:
        rabbitmq.take_down(self.info)

    def start(self) -> None:
        rabbitmq.bring_up(self.info)


@functools.cache
def _running_dev_env() -> environment.Environment | None:
    # Once per session: the header and every fixture act on the same answer (and probe the broker once).
    try:
        from harness import environment
    except ImportError:  # the library's venv has no cluster dependencies, so no dev environment to reuse
        return None
    env = environment.load()
    return env if env is not None and env.alive() else None


def _reusable_dev_env() -> environment.Environment | None:
    dev = _running_dev_env()
    return dev if dev is not None and not dev.occupants() else None


def pytest_report_header() -> str | None:
    dev = _running_dev_env()
    if dev is None:
        return None
    occupants = dev.occupants()
    if not occupants:
        return f"dev environment: reusing {dev.directory}"
    return (
        f"dev environment: {dev.directory} runs {', '.join(occupants)};"
        " the tests start clusters and a broker of their own and leave it alone"
    )


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    options = rabbitmq.Options.from_env()
    dev = _running_dev_env()
    if dev is not None and dev.occupants():
        # Its broker (on 5672) serves that deployment: a node of our own, so that neither side meets
        # the other's connections, users or ClusterSyncBrokers' names.
        options = replace(options, private=True)
    elif dev is not None and rabbitmq.serves(dev.broker, options):
        yield BrokerHandle(dev.broker)
        return
    if not (Path("/usr/lib/rabbitmq/bin/rabbitmq-server").exists() or shutil.which("apt-get")):
        pytest.skip("RabbitMQ is not installed and apt-get is unavailable: install rabbitmq-server")
    info = rabbitmq.start(tmp_path_factory.mktemp("rabbitmq"), options)
    handle = BrokerHandle(info)
    yield handle
    # A fault test may have left the app stopped; make sure shutdown finds a sane node.
    rabbitmq.stop(info)


@pytest.fixture(scope="session")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ClusterHandle]]:
    from kubernetes import config

    from harness import binaries, controlplane, environment

    dev = _reusable_dev_env()
    started: list[controlplane.Cluster] = []
    if dev is not None:
        running = dev.clusters
    else:
        if shutil.which("go") is None and not binaries.cache_root().exists():
            pytest.skip("Go is not installed and no control-plane binaries are cached: install Go >= 1.25")
        bins = binaries.ensure_binaries()
        base = tmp_path_factory.mktemp("clusters")
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = {
                name: pool.submit(controlplane.start, name, bins, base / name, base / f"{name}.kubeconfig")
                for name in environment.DEFAULT_CLUSTERS
            }
            running = {name: f.result() for name, f in futures.items()}
        started = list(running.values())
    handles = {
        name: ClusterHandle(
            name=name,
            kubeconfig=Path(c.kubeconfig),
            server=c.server,
            api=config.new_client_from_config(config_file=c.kubeconfig),
        )
        for name, c in running.items()
    }
    yield handles
    for handle in handles.values():
        handle.api.close()
    for cluster in started:
        controlplane.stop(cluster)


@pytest.fixture(scope="session")
def operator_seat() -> OperatorSeat:
    return OperatorSeat()


@pytest.fixture
def uid() -> str:
    """A short unique string for this test's names (namespaces, queues, exchanges)."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def namespace(clusters: dict[str, ClusterHandle], uid: str) -> Iterator[str]:
    """A fresh namespace of the same name in every cluster, deleted afterwards."""
    from kubernetes import client

    name = f"t-{uid}"
    for handle in clusters.values():
        handle.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    for handle in clusters.values():
        handle.core.delete_namespace(name)
