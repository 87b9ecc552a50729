"""Fixtures of the example services' tests: each service is really run, as the pods run it.

``python manage.py migrate`` then ``runserver`` on a free port and a fresh SQLite file; the consumer
is ``python manage.py rabbitsync_sidecar`` in the same directory with the same environment, as the
operator injects it. The queues come from the SyncSubscriptions in ``manifests/services``, declared
the way the operator declares them (``desired_topology`` + ``observe_and_sync``), on a per-test
exchange and namespace so tests never see each other's events. Each service of each cluster logs in
as its own broker user, made for the test (``harness.identities``), as the operator makes them:
the sidecars apply only events whose ``user_id`` is the user of their ``source``.

Test modules use the fixtures only (no ``from conftest import``): other test folders have a
``conftest`` module of their own.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import pytest
import yaml

from harness import polling
from harness.identities import Identities
from harness.processes import free_port
from rabbitsync.conventions import broker_username

ROOT = Path(__file__).resolve().parents[3]
SERVICES_DIR = ROOT / "services"
SUBSCRIPTIONS = ROOT / "manifests" / "services" / "subscriptions.yaml"
START_TIMEOUT = 60.0


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    return polling.eventually(condition, timeout, what, interval=interval)


@dataclass
class Response:
    status: int
    body: Any


@dataclass
class Service:
    """One example service (web process, optional sidecar) in one pretend cluster."""

    name: str
    cluster: str
    base: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return SERVICES_DIR / self.name

    @property
    def db_path(self) -> Path:
        return Path(self.env["SQLITE_PATH"])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.directory,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{self.name}: manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def _spawn(self, role: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.base / f"{self.cluster}-{self.name}-{role}.log").open("ab")
        with log:
            process = subprocess.Popen(
                [sys.executable, "manage.py", *args], cwd=self.directory, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.processes[role] = process
        return process

    def start(self) -> Service:
        self.manage("migrate", "--noinput", "-v0")
        self._spawn("web", ["runserver", f"127.0.0.1:{self.port}", "--noreload"], self.env)
        wait_until(lambda: self._alive("web") and self._up(), START_TIMEOUT, f"{self.name} /healthz")
        return self

    def start_sidecar(self, subscriptions: str) -> Service:
        """The consumer, with the RABBITSYNC_SUBSCRIPTIONS the operator would inject."""
        port = free_port()
        env = {
            **self.env,
            "RABBITSYNC_SUBSCRIPTIONS": subscriptions,
            "RABBITSYNC_HTTP_PORT": str(port),
            "RABBITSYNC_HTTP_HOST": "127.0.0.1",
        }
        self._spawn("sidecar", ["rabbitsync_sidecar"], env)

        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                    return resp.status == 200
            except OSError:
                return False

        wait_until(lambda: self._alive("sidecar") and ready(), START_TIMEOUT, f"{self.name} sidecar /readyz")
        return self

    def _alive(self, role: str) -> bool:
        process = self.processes[role]
        if process.poll() is not None:
            raise AssertionError(f"{self.cluster}/{self.name} {role} exited {process.returncode}:\n{self.logs(role)}")
        return True

    def _up(self) -> bool:
        try:
            return self.call("GET", "/healthz").status == 200
        except OSError:
            return False

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None) -> Response:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                status, text = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        return Response(status, json.loads(text) if text else None)

    def items(self, path: str) -> list[dict[str, Any]]:
        response = self.call("GET", path)
        assert response.status == 200, response
        return response.body["items"]

    def find(self, path: str, entity_id: str) -> dict[str, Any] | None:
        return next((item for item in self.items(path) if item["id"] == entity_id), None)

    def outbox(self) -> list[dict[str, Any]]:
        """The events this service published (its outbox table), oldest first, decoded."""
        with contextlib.closing(sqlite3.connect(self.db_path)) as db:
            rows = db.execute("SELECT body FROM rabbitsync_outbox ORDER BY id").fetchall()
        return [json.loads(bytes(body)) for (body,) in rows]

    def apply(self, *events: dict[str, Any]) -> list[str]:
        """Hand events to the library's ``apply`` inside the service (the sidecar's path minus the broker).

        Returns each outcome (``applied``, ``duplicate``, ``own``, or ``rejected`` when a handler raised
        ``Reject``: the sidecar dead-letters those at once).
        """
        script = (
            "import sys\n"
            "from rabbitsync.django import Reject, apply\n"
            "from rabbitsync.events import decode\n"
            "for line in sys.stdin:\n"
            "    try:\n"
            "        print(apply(decode(line.strip().encode())).value)\n"
            "    except Reject:\n"
            "        print('rejected')\n"
        )
        result = self.manage("shell", "--no-imports", "-c", script, stdin="".join(json.dumps(e) + "\n" for e in events))
        return result.stdout.split()

    def logs(self, role: str) -> str:
        path = self.base / f"{self.cluster}-{self.name}-{role}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@pytest.fixture
def run_service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Factory: ``run_service("restaurant", cluster="east", **env)`` migrates and starts its web process."""
    started: list[Service] = []

    def start(name: str, *, cluster: str = "east", namespace: str = "foodapp", **extra_env: str) -> Service:
        directory = tmp_path / f"{cluster}-{name}"
        directory.mkdir()
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("RABBITSYNC_", "DJANGO_")) and key not in ("DATABASE_URL", "SQLITE_PATH")
        }
        env |= {
            "SQLITE_PATH": str(directory / "db.sqlite3"),
            "RABBITSYNC_CLUSTER": cluster,
            "RABBITSYNC_NAMESPACE": namespace,
            "RABBITSYNC_SERVICE": name,
            "RABBITSYNC_RECONNECT_MAX_DELAY": "2",
            "PYTHONUNBUFFERED": "1",
            # From a Secret in the manifests; the services refuse to start on the insecure default.
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            **extra_env,
        }
        service = Service(name, cluster, tmp_path, env)
        started.append(service)
        return service.start()

    yield start
    for service in started:
        service.stop()


# -- broker ---------------------------------------------------------------------------------------


def manifest_subscriptions() -> dict[str, dict[str, Any]]:
    """The SyncSubscriptions of manifests/services, by name."""
    docs = [d for d in yaml.safe_load_all(SUBSCRIPTIONS.read_text()) if d]
    return {d["metadata"]["name"]: d for d in docs}


@dataclass
class FoodBroker:
    """The per-test slice of the real broker: an exchange and a namespace of our own."""

    amqp_url: str
    """The admin URL: declaring the topology is the operator's part."""
    management_url: str
    exchange: str
    namespace: str
    declared: list[Any] = field(default_factory=list)
    identities: Identities = field(init=False)

    def __post_init__(self) -> None:
        self.identities = Identities(self.amqp_url, self.management_url)

    def _broker(self) -> Any:
        from rabbitsync.amqp import BrokerEndpoint, RabbitBroker

        return RabbitBroker(BrokerEndpoint(self.amqp_url, management_uri=self.management_url))

    def subscribe(self, cluster: str, subscription: str) -> str:
        """Declare ``subscription`` (from the manifests) for ``cluster``; the sidecar's RABBITSYNC_SUBSCRIPTIONS."""
        from rabbitsync.amqp import observe_and_sync
        from rabbitsync.api.syncsubscription import SyncSubscriptionSpec
        from rabbitsync.topology import sidecar_contract as consumer
        from rabbitsync.topology.desired import desired_topology

        spec = SyncSubscriptionSpec.model_validate(manifest_subscriptions()[subscription]["spec"])
        topology = desired_topology(
            cluster=cluster, namespace=self.namespace, subscription=subscription, spec=spec, exchange=self.exchange
        )
        result = observe_and_sync(self._broker(), topology)
        assert result.verified, result
        self.declared.append(topology)
        return consumer.dumps(
            [consumer.for_subscription(cluster=cluster, namespace=self.namespace, subscription=subscription, spec=spec)]
        )

    def env(self, cluster: str, service: str) -> dict[str, str]:
        """What the pods of ``service`` in ``cluster`` get: its own broker user, the test's exchange."""
        user = broker_username(cluster, self.namespace, service)
        return {"RABBITSYNC_AMQP_URL": self.identities.url(user), "RABBITSYNC_EXCHANGE": self.exchange}

    def cleanup(self) -> None:
        from rabbitsync.amqp import delete_topology

        self.identities.delete_all()
        broker = self._broker()
        for topology in self.declared:
            with contextlib.suppress(Exception):
                delete_topology(broker, topology)
        with contextlib.suppress(Exception):
            connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
            try:
                connection.channel().exchange_delete(self.exchange)
            finally:
                connection.close()


@pytest.fixture
def food_broker(broker: Any, uid: str) -> Iterator[FoodBroker]:
    handle = FoodBroker(broker.amqp_url, broker.management_url, f"rabbitsync.test.{uid}", f"t-{uid}")
    yield handle
    handle.cleanup()


@pytest.fixture
def deployed(run_service: Callable[..., Service], food_broker: FoodBroker) -> Callable[[str, str], Service]:
    """Factory: ``deployed("restaurant", "east")``: web process and sidecar, as a pod of the overlay."""

    def deploy(name: str, cluster: str) -> Service:
        subscriptions = food_broker.subscribe(cluster, name)
        service = run_service(name, cluster=cluster, namespace=food_broker.namespace, **food_broker.env(cluster, name))
        return service.start_sidecar(subscriptions)

    return deploy


@pytest.fixture
def eventually() -> Callable[..., Any]:
    """``eventually(check, what, timeout=20)``: poll until ``check()`` is truthy, return its value."""

    def poll(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
        return wait_until(check, timeout, what, interval=0.2)

    return poll
