"""A real RabbitMQ on loopback: Debian's ``rabbitmq-server`` with the management plugin.

A broker already listening on 127.0.0.1:5672 is reused (its credentials come from
``RABBITSYNC_AMQP_URL``/``RABBITSYNC_MANAGEMENT_URL``, else guest/guest) and never stopped by us.
Otherwise the harness runs its own node with all its files under the state directory, as root
without the Debian service wrapper, and stops it on teardown.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from base64 import b64encode
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import processes

AMQP_PORT = 5672
MANAGEMENT_PORT = 15672
NODE = "rabbitsync@localhost"
_SBIN = Path("/usr/lib/rabbitmq/bin")

_CONFIG = f"""\
listeners.tcp.default = 127.0.0.1:{AMQP_PORT}
management.tcp.ip = 127.0.0.1
management.tcp.port = {MANAGEMENT_PORT}
loopback_users = none
# Quicker detection of dead peers for the fault tests; the client side sets heartbeats too.
heartbeat = 10
"""


@dataclass(frozen=True)
class Broker:
    """A running broker as recorded in the state directory."""

    amqp_url: str
    management_url: str
    node: str
    owned: bool
    base: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Broker:
        return cls(**data)  # type: ignore[arg-type]


def ensure_installed() -> None:
    if (_SBIN / "rabbitmq-server").exists():
        return
    if os.geteuid() != 0:
        raise RuntimeError("rabbitmq-server is not installed; run: sudo apt-get install -y rabbitmq-server")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "rabbitmq-server"], check=True, env=env)


def _env(base: Path) -> dict[str, str]:
    return {
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        "RABBITMQ_NODENAME": NODE,
        "HOME": str(Path.home()),
    }


def ctl(broker: Broker, *args: str, timeout: float = 60) -> str:
    """Run ``rabbitmqctl`` against the broker's node."""
    # The unwrapped script runs as the caller and so uses the caller's Erlang cookie, which is what a node
    # the harness started (as this user) expects; Debian's /usr/sbin wrapper would switch to the rabbitmq user.
    exe = (
        str(_SBIN / "rabbitmqctl") if (_SBIN / "rabbitmqctl").exists() else shutil.which("rabbitmqctl") or "rabbitmqctl"
    )
    env = {**os.environ, **(_env(Path(broker.base)) if broker.owned else {})}
    proc = subprocess.run([exe, "-n", broker.node, *args], capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def management_request(management_url: str, method: str, path: str, body: object | None = None) -> object:
    """Call the management API; credentials come from the URL's userinfo."""
    parts = urllib.parse.urlsplit(management_url)
    auth = b64encode(f"{parts.username}:{parts.password}".encode()).decode()
    base = f"{parts.scheme}://{parts.hostname}:{parts.port}"
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Basic {auth}", "Content-Type": "application/json"}
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=5) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


def management_get(management_url: str, path: str) -> object:
    return management_request(management_url, "GET", path)


def create_vhost(broker: Broker, name: str) -> str:
    """A fresh vhost the broker's user may fully use; returns the AMQP URL that points at it.

    Isolation for suites that deploy fixed names (the e2e overlays' clusters are always east and
    west): in their own vhost they never share a queue with a running demo on the same broker.
    """
    quoted = urllib.parse.quote(name, safe="")
    user = urllib.parse.urlsplit(broker.amqp_url).username
    management_request(broker.management_url, "PUT", f"/api/vhosts/{quoted}")
    management_request(
        broker.management_url,
        "PUT",
        f"/api/permissions/{quoted}/{user}",
        {"configure": ".*", "write": ".*", "read": ".*"},
    )
    parts = urllib.parse.urlsplit(broker.amqp_url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + quoted))


def delete_vhost(broker: Broker, name: str) -> None:
    management_request(broker.management_url, "DELETE", f"/api/vhosts/{urllib.parse.quote(name, safe='')}")


def ready(broker: Broker) -> bool:
    if not processes.port_open(urllib.parse.urlsplit(broker.amqp_url).port or AMQP_PORT):
        return False
    try:
        management_get(broker.management_url, "/api/overview")
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return True


def start(base: Path) -> Broker:
    """Reuse a broker on 127.0.0.1:5672, or start our own node under ``base``."""
    if processes.port_open(AMQP_PORT):
        broker = Broker(
            amqp_url=os.environ.get("RABBITSYNC_AMQP_URL", f"amqp://guest:guest@127.0.0.1:{AMQP_PORT}/"),
            management_url=os.environ.get(
                "RABBITSYNC_MANAGEMENT_URL", f"http://guest:guest@127.0.0.1:{MANAGEMENT_PORT}"
            ),
            node=os.environ.get("RABBITSYNC_RABBITMQ_NODE", NODE),
            owned=False,
            base=str(base),
        )
        processes.wait_until(lambda: ready(broker), 60, "existing RabbitMQ management API")
        return broker
    ensure_installed()
    base.mkdir(parents=True, exist_ok=True)
    (base / "rabbitmq.conf").write_text(_CONFIG)
    (base / "enabled_plugins").write_text("[rabbitmq_management].\n")
    broker = Broker(
        amqp_url=f"amqp://guest:guest@127.0.0.1:{AMQP_PORT}/",
        management_url=f"http://guest:guest@127.0.0.1:{MANAGEMENT_PORT}",
        node=NODE,
        owned=True,
        base=str(base),
    )
    _start_node(broker)
    return broker


def _start_node(broker: Broker) -> None:
    base = Path(broker.base)
    log = base / "log" / "server.out"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        subprocess.run(
            [str(_SBIN / "rabbitmq-server"), "-detached"],
            env={**os.environ, **_env(base)},
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
        )
    ctl(broker, "wait", str(base / "rabbitmq.pid"), "--timeout", "300", timeout=330)
    processes.wait_until(lambda: ready(broker), 60, "RabbitMQ management API", str(log))


def stop(broker: Broker) -> None:
    """Shut down the node if we started it; a reused broker is left alone."""
    if broker.owned:
        ctl(broker, "shutdown", timeout=120)


# Fault helpers for the tests: they act on the running node, owned or reused.


def close_all_connections(broker: Broker, reason: str = "rabbitsync fault test") -> None:
    ctl(broker, "close_all_connections", reason)


def stop_app(broker: Broker) -> None:
    """Stop the RabbitMQ application (every connection drops, listeners close); the node stays up."""
    ctl(broker, "stop_app", timeout=120)


def start_app(broker: Broker) -> None:
    ctl(broker, "start_app", timeout=120)
    processes.wait_until(lambda: ready(broker), 60, "RabbitMQ after start_app")
