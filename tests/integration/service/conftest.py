"""Fixtures of the service-side integration tests: real Django on a real SQLite file, real broker.

The pytest process is the *publishing* service (``publisher`` in cluster ``c1``): it calls
``publish()`` and its in-process relay sends. Sidecars run as subprocesses
(``python -m django rabbitsync_sidecar``) as the *consuming* service (``consumer`` in ``c1``),
sharing the database file, so killing one is a real SIGKILL. Each test gets its own exchange and
queues (named from ``uid``), declared here the way the operator will declare them.

Identities. Every service logs in as its own broker user (``broker_username``), made for this
session in a namespace of its own (:mod:`harness.identities`): a sidecar applies an event only if its
``user_id`` is the user of the service in its ``source``. The sidecars log in as the *publisher*:
they share this process's database, so their relay sweeps the outbox rows this process wrote, and a
service's sidecar holds the same credentials as its web container. Events of other services are
sent by ``Topology.send_event`` as the user of their ``source``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pika
import pytest

from harness import postgres as pg_harness
from harness import rabbitmq
from harness.identities import Identities
from harness.polling import eventually
from harness.processes import free_port
from rabbitsync.amqp import RabbitBroker
from rabbitsync.conventions import broker_username, routing_key
from rabbitsync.events import CONTENT_TYPE, CloudEvent, Origin, encode
from rabbitsync.topology import sidecar_contract as contract
from rabbitsync.topology.delays import shared_delays
from rabbitsync.topology.unroutable import UnroutableTopology, unroutable_for
from rabbitsync.transport import BrokerEndpoint

HERE = Path(__file__).parent
CLUSTER = "c1"
NAMESPACE = f"ns-{secrets.token_hex(3)}"
"""This session's namespace: the services' broker users are named from it, so no other run shares them."""
PUBLISHER, CONSUMER = "publisher", "consumer"
PUBLISHING = Origin(CLUSTER, NAMESPACE, PUBLISHER)
"""This process: the service whose outbox the relays send."""

if str(HERE) not in sys.path:  # the test project's packages (svcproject, svcapp)
    sys.path.insert(0, str(HERE))


BOTH_DATABASES = pytest.mark.parametrize("database", ["sqlite", "postgres"], indirect=True)
"""Run a test once on the SQLite file and once on the throwaway PostgreSQL server."""


@dataclass(frozen=True)
class Mode:
    """How the sidecar applies events: one by one, in batches, or in batches on parallel workers."""

    batch: int = 1
    env: dict[str, str] = field(default_factory=dict)


MODES = {
    "one-by-one": Mode(),
    "batched": Mode(batch=50),
    "parallel": Mode(batch=50, env={"RABBITSYNC_CONSUME_WORKERS": "4"}),
}
EVERY_MODE = pytest.mark.parametrize(
    ("database", "mode"),
    [("sqlite", "one-by-one"), ("sqlite", "batched"), ("postgres", "parallel")],
    indirect=["database"],
)
"""Run a test in each consumer mode; parallel workers need PostgreSQL (SQLite has one writer)."""


def wait_until(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> object:
    return eventually(condition, timeout, what, interval=interval)


# -- Django -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def django_project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Django set up in this process on a fresh SQLite file; the env sidecars need to share it."""
    base = tmp_path_factory.mktemp("service")
    env = {
        "SVC_DB_PATH": str(base / "svc.sqlite3"),
        "SVC_ATTEMPTS_DIR": str(base / "attempts"),
        "DJANGO_SETTINGS_MODULE": "svcproject.settings",
    }
    Path(env["SVC_ATTEMPTS_DIR"]).mkdir()
    os.environ.update(env)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return env


@pytest.fixture(scope="session")
def postgres(django_project: dict[str, str]) -> Iterator[str]:
    """A throwaway PostgreSQL server with the migrated schema; its ``DATABASE_URL``."""
    try:
        pg_harness.ensure_installed()
    except (RuntimeError, subprocess.CalledProcessError) as e:
        pytest.skip(f"PostgreSQL server binaries absent and not installable here: {e}")
    with pg_harness.running() as server:
        env = {**os.environ, **django_project, "DATABASE_URL": server.url}
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
        subprocess.run([sys.executable, "-m", "django", "migrate", "-v", "0"], env=env, cwd=HERE, check=True)
        yield server.url


@pytest.fixture
def database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The default database of this process and of its sidecars: ``sqlite`` unless a test asks for
    ``postgres`` with ``@pytest.mark.parametrize("database", [...], indirect=True)``."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield backend
        return
    from django.db import connections

    from rabbitsync.django import database_config

    url = request.getfixturevalue("postgres")
    monkeypatch.setenv("DATABASE_URL", url)  # the sidecars started by this test inherit it
    original = connections.settings
    connections.close_all()
    with contextlib.suppress(AttributeError):
        del connections["default"]
    connections.settings = connections.configure_settings({"default": database_config("unused")})
    try:
        assert connections["default"].vendor == "postgresql"
        yield backend
    finally:
        connections.close_all()
        with contextlib.suppress(AttributeError):
            del connections["default"]
        connections.settings = original


# -- broker topology --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def identities(broker) -> Iterator[Identities]:
    """The broker users of this session's services, deleted at its end."""
    made = Identities(broker.amqp_url, broker.management_url)
    yield made
    made.delete_all()


def user_url(identities: Identities, origin: Origin) -> str:
    """The AMQP URL of the service ``origin`` names: what it publishes and consumes with."""
    return identities.url(broker_username(*origin))


@dataclass
class Topology:
    amqp_url: str
    """The admin URL: declaring and inspecting queues is the operator's part."""
    exchange: str
    identities: Identities
    specs: list[contract.ConsumerSpec] = field(default_factory=list)

    def queues(self) -> list[str]:
        """The subscriptions' own queues (the cluster's delay queues are shared, as in production)."""
        names: list[str] = []
        for spec in self.specs:
            names += [spec.queue, spec.dead_letter_queue]
        return names

    def declare(self, spec: contract.ConsumerSpec, namespace: str = NAMESPACE) -> contract.ConsumerSpec:
        """What the operator does for a SyncSubscription of ``namespace``, reduced to one ConsumerSpec."""
        with channel(self.amqp_url) as ch:
            ch.exchange_declare(self.exchange, "topic", durable=True)
            ch.queue_declare(spec.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"})
            ch.queue_declare(
                spec.queue,
                durable=True,
                arguments={
                    "x-queue-type": "quorum",
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": spec.dead_letter_queue,
                },
            )
            shared = shared_delays(
                cluster=CLUSTER, queue_type="quorum", main_queue=spec.queue, delays=spec.retry_delays_ms
            )
            for exchange in shared.exchanges:
                ch.exchange_declare(exchange.name, exchange.type, durable=True, arguments=dict(exchange.arguments))
            for queue in shared.queues:
                ch.queue_declare(queue.name, durable=True, arguments=dict(queue.arguments))
            for binding in shared.bindings:
                ch.queue_bind(binding.queue, binding.exchange, routing_key=binding.routing_key)
            for event_type in spec.events:
                ch.queue_bind(spec.queue, self.exchange, routing_key=routing_key(namespace, event_type))
        self.specs.append(spec)
        return spec

    def delete(self) -> None:
        with channel(self.amqp_url) as ch:
            for queue in self.queues():
                ch.queue_delete(queue)
            ch.exchange_delete(self.exchange)

    def depth(self, queue: str) -> int:
        with channel(self.amqp_url) as ch:
            return ch.queue_declare(queue, passive=True).method.message_count

    def take(self, queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
        """Remove and return every message waiting in ``queue``."""
        got = []
        with channel(self.amqp_url) as ch:
            while True:
                method, props, body = ch.basic_get(queue, auto_ack=True)
                if method is None:
                    return got
                got.append((props, body))

    def send_raw(
        self,
        event_type: str,
        body: bytes,
        message_id: str | None = None,
        *,
        sender: Origin = PUBLISHING,
        namespace: str = NAMESPACE,
    ) -> None:
        """Publish bytes as ``sender`` would (or a broken one), in ``namespace``'s key space, confirmed."""
        url = user_url(self.identities, sender)
        publish(url, self.exchange, routing_key(namespace, event_type), body, message_id, broker_username(*sender))

    def send_event(self, event: CloudEvent, *, sender: Origin | None = None) -> None:
        """Publish ``event`` as the service of its ``source`` (or as ``sender``, to forge it)."""
        origin = sender or event.origin
        self.send_raw(event.type, encode(event), event.id, sender=origin, namespace=origin.namespace)


def publish(url: str, exchange: str, key: str, body: bytes, message_id: str | None, user_id: str | None) -> None:
    """One confirmed publish over ``url``, carrying ``user_id`` (the broker refuses any but its user's)."""
    with channel(url) as ch:
        ch.confirm_delivery()
        properties = pika.BasicProperties(
            content_type=CONTENT_TYPE, delivery_mode=2, message_id=message_id, user_id=user_id
        )
        ch.basic_publish(exchange, key, body, properties)


@contextlib.contextmanager
def channel(amqp_url: str) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        yield connection.channel()
    finally:
        connection.close()


def make_spec(
    uid: str,
    events: list[str],
    *,
    max_attempts: int = 3,
    initial_backoff_ms: int = 400,
    max_backoff_ms: int = 800,
    prefetch: int = 20,
    name: str = "sub",
    namespace: str = NAMESPACE,
    batch: int = 1,
) -> contract.ConsumerSpec:
    return contract.build(
        cluster=CLUSTER,
        namespace=namespace,
        subscription=f"{name}-{uid}",
        events=events,
        max_attempts=max_attempts,
        initial_backoff_ms=initial_backoff_ms,
        max_backoff_ms=max_backoff_ms,
        dead_letter=True,
        prefetch=prefetch,
        batch=batch,
    )


# -- the per-test service ----------------------------------------------------------------------------


@pytest.fixture
def service(
    broker, uid: str, django_project: dict[str, str], database: str, identities: Identities
) -> Iterator[Topology]:
    """Clean tables, this test's exchange, and the publishing identity for this process."""
    from django.test import override_settings
    from svcapp.models import Effect, Entity

    from rabbitsync.django import relay
    from rabbitsync.django.models import InboxMessage, OutboxMessage

    for model in (OutboxMessage, InboxMessage, Effect, Entity):
        model.objects.all().delete()
    topology = Topology(broker.amqp_url, f"rabbitsync.test.{uid}", identities)
    with channel(broker.amqp_url) as ch:
        ch.exchange_declare(topology.exchange, "topic", durable=True)
    # As the operator does for a SyncBroker: what no subscription takes is kept (issue 10).
    net = keep_unroutable_events(broker, topology.exchange)
    overrides = {
        "AMQP_URL": user_url(identities, PUBLISHING),
        "CLUSTER": CLUSTER,
        "NAMESPACE": NAMESPACE,
        "SERVICE": PUBLISHER,
        "EXCHANGE": topology.exchange,
        "HEARTBEAT": 10,
        "RECONNECT_MAX_DELAY": 2.0,
    }
    with override_settings(RABBITSYNC=overrides):
        yield topology
        relay.stop_local_relay()
    with contextlib.suppress(Exception):  # a failed fault test may leave the broker half-there
        topology.delete()
    with contextlib.suppress(Exception):
        drop_unroutable_net(broker, net)


def keep_unroutable_events(broker, exchange: str) -> UnroutableTopology:
    """The operator's alternate exchange, queue and policy for ``exchange``."""
    net = unroutable_for(exchange)
    RabbitBroker(BrokerEndpoint(broker.amqp_url, broker.management_url)).keep_unroutable(net)
    return net


def drop_unroutable_net(broker, net: UnroutableTopology) -> None:
    rabbitmq.management_request(broker.management_url, "DELETE", f"/api/policies/%2F/{net.policy}")
    with channel(broker.amqp_url) as ch:
        ch.queue_delete(net.queue)
        ch.exchange_delete(net.alternate_exchange)


# -- sidecar subprocesses ------------------------------------------------------------------------


class Sidecar:
    """``manage.py rabbitsync_sidecar`` as a real process, with its probes and metrics."""

    def __init__(self, env: dict[str, str], log_path: Path, command: list[str]) -> None:
        self.env = env
        self.command = command
        self.port = int(env["RABBITSYNC_HTTP_PORT"])
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Sidecar:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=HERE,
            )
        return self

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return 0, ""

    def ready(self) -> bool:
        return self.get("/readyz")[0] == 200

    def wait_ready(self, timeout: float = 30) -> Sidecar:
        def check() -> bool:
            assert self.process is not None and self.process.poll() is None, self.logs()
            return self.ready()

        wait_until(check, timeout, "sidecar /readyz")
        return self

    def metric(self, name: str) -> float:
        """Sum of a metric over all its label sets (0 when absent)."""
        status, text = self.get("/metrics")
        assert status == 200, "metrics endpoint down"
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and (line[len(name)] in " {"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def terminate(self, timeout: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]


@pytest.fixture
def sidecars(service: Topology, django_project: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Sidecar]]:
    """Factory: ``sidecars(*specs, **env)`` starts a consuming sidecar; all are killed afterwards.

    It runs ``python -m django rabbitsync_sidecar`` unless ``command=[...]`` says otherwise.
    """
    started: list[Sidecar] = []

    def start(*specs: contract.ConsumerSpec, command: list[str] | None = None, **extra_env: str) -> Sidecar:
        env = {
            **os.environ,
            **django_project,
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
            # The publisher's user: see the module docstring.
            "RABBITSYNC_AMQP_URL": user_url(service.identities, PUBLISHING),
            "RABBITSYNC_CLUSTER": CLUSTER,
            "RABBITSYNC_NAMESPACE": NAMESPACE,
            "RABBITSYNC_SERVICE": CONSUMER,
            "RABBITSYNC_EXCHANGE": service.exchange,
            "RABBITSYNC_SUBSCRIPTIONS": contract.dumps(list(specs)),
            "RABBITSYNC_HTTP_PORT": str(free_port()),
            "RABBITSYNC_RECONNECT_MAX_DELAY": "2",
            **extra_env,
        }
        command = command or [sys.executable, "-m", "django", "rabbitsync_sidecar"]
        sidecar = Sidecar(env, tmp_path / f"sidecar-{len(started)}.log", command).start()
        started.append(sidecar)
        return sidecar

    yield start
    for sidecar in started:
        sidecar.kill()
