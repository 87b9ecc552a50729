"""A real RabbitMQ on loopback: Debian's ``rabbitmq-server`` with the management plugin.

A broker already listening on 127.0.0.1:5672 is reused (its credentials come from
``RABBITSYNC_AMQP_URL``/``RABBITSYNC_MANAGEMENT_URL``, else guest/guest) and never stopped by us.
Otherwise the harness runs its own node with all its files under the state directory, as root
without the Debian service wrapper, and stops it on teardown (``rabbitmq_teardown``: a bounded
shutdown, then SIGTERM and SIGKILL of that node's own processes).

Two environment variables choose another broker (read by ``make dev-up`` and the test fixtures):
``RABBITSYNC_RABBITMQ=4.0`` runs Debian 13's RabbitMQ 4.0 in a chroot (``debian_root``) and
``RABBITSYNC_BROKER_TLS=1`` adds an amqps (and https management) listener with a throwaway CA. Such
a node is never the shared one: it gets ports, node name and epmd of its own (``rabbitmq_config``).
``RABBITSYNC_BROKER_PRIVATE=1`` asks for such a node of the default version, so that test sessions
running side by side (several worktrees on one machine) never stop each other's broker.
``RABBITSYNC_BROKER_DLX_CONFIRM_TIMEOUT=30`` (seconds) gives a node of our own a shorter wait before
a quorum queue's dead-letter worker resends an unconfirmed batch (the fault suite's; README, Guarantees).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from harness import apt, debian_root, pki, polling, processes, rabbitmq_teardown
from harness.rabbitmq_config import (
    ENABLED_PLUGINS,
    NodeFiles,
    Ports,
    TLSFiles,
    node_env,
    node_name,
    own_ports,
    render_advanced_config,
    render_config,
    write_cookie,
)

log = logging.getLogger(__name__)

AMQP_PORT = 5672
MANAGEMENT_PORT = 15672
NODE = "rabbitsync@localhost"
_SBIN = Path("/usr/lib/rabbitmq/bin")

DEFAULT_VERSION = "3.10"
SUITES: dict[str, str | None] = {"3.10": None, "4.0": "trixie"}
"""Broker version -> the Debian release whose ``rabbitmq-server`` it is (None: this machine's, Debian 12)."""
SHUTDOWN_TIMEOUT = 30.0
"""Seconds ``rabbitmqctl shutdown`` may take before teardown signals the node's processes."""


@dataclass(frozen=True)
class Options:
    """Which broker to run: the version and whether it also listens for TLS."""

    version: str = DEFAULT_VERSION
    tls: bool = False
    private: bool = False
    """A node of our own even for the default version and no TLS."""
    dead_letter_confirm_timeout_s: float | None = None
    """None: RabbitMQ's default (180 s); see ``rabbitmq_config.render_advanced_config``."""

    @classmethod
    def from_env(cls) -> Options:
        version = os.environ.get("RABBITSYNC_RABBITMQ") or DEFAULT_VERSION
        if version not in SUITES:
            raise ValueError(f"RABBITSYNC_RABBITMQ={version!r}: one of {', '.join(SUITES)}")
        return cls(
            version=version,
            tls=_flag("RABBITSYNC_BROKER_TLS"),
            private=_flag("RABBITSYNC_BROKER_PRIVATE"),
            dead_letter_confirm_timeout_s=_seconds("RABBITSYNC_BROKER_DLX_CONFIRM_TIMEOUT"),
        )

    @property
    def shared(self) -> bool:
        """The plain default broker, the one on 5672 that may be shared with others."""
        return self == Options()


@dataclass(frozen=True)
class Broker:
    """A running broker (or one node of a cluster) as recorded in the state directory."""

    amqp_url: str
    management_url: str
    node: str
    owned: bool
    base: str
    version: str = DEFAULT_VERSION
    ports: Ports | None = None
    """Set for a node we started (None: a reused broker, whose ports we only know from its URLs)."""
    root: str | None = None
    """The Debian root the node runs in under chroot (None: this machine's RabbitMQ)."""
    home: str | None = None
    """HOME holding the node's Erlang cookie (None: the caller's, as for the shared default node)."""
    amqps_url: str | None = None
    management_tls_url: str | None = None
    ca_pem: str | None = None
    """The PEM CA that signed the TLS listeners' certificate (host names localhost and 127.0.0.1)."""
    dead_letter_confirm_timeout_s: float | None = None

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Broker:
        ports = data.get("ports")
        fields = {**data, "ports": Ports(**ports) if isinstance(ports, dict) else None}
        return cls(**fields)  # type: ignore[arg-type]

    @property
    def files(self) -> NodeFiles:
        return NodeFiles(Path(self.base))


def _seconds(name: str) -> float | None:
    """The variable ``name`` as a number of seconds above 0; None when unset or empty.

    Anything else is refused with the reason: a node given a negative timeout never finishes booting.
    """
    raw = os.environ.get(name) or None
    if raw is None:
        return None
    with contextlib.suppress(ValueError):
        if (seconds := float(raw)) > 0:
            return seconds
    raise ValueError(f"{name}={raw!r}: seconds, a number above 0")


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def ensure_installed() -> None:
    if not (_SBIN / "rabbitmq-server").exists():
        apt.install("rabbitmq-server")


def _env(broker: Broker) -> dict[str, str]:
    ports = broker.ports or Ports.default()
    home = Path(broker.home) if broker.home else Path.home()
    # UTF-8 for RabbitMQ 4's CLI (Elixir), which warns on a latin1 VM and mangles names.
    return {**node_env(broker.files, broker.node, ports, home), "LANG": "C.UTF-8"}


def _command(broker: Broker, program: str, *args: str) -> list[str]:
    """``program`` (a script of RabbitMQ's sbin) for this broker, inside its Debian root when it has one."""
    # The unwrapped scripts run as the caller and so use the caller's Erlang cookie, which is what a node
    # the harness started (as this user) expects; Debian's /usr/sbin wrapper would switch to the rabbitmq user.
    if broker.root:
        return debian_root.chroot_command(Path(broker.root), [str(_SBIN / program), *args], binds=[Path(broker.base)])
    exe = str(_SBIN / program) if (_SBIN / program).exists() else shutil.which(program) or program
    return [exe, *args]


def ctl(broker: Broker, *args: str, timeout: float = 60) -> str:
    """Run ``rabbitmqctl`` against the broker's node."""
    env = {**os.environ, **(_env(broker) if broker.owned else {})}
    argv = _command(broker, "rabbitmqctl", "-n", broker.node, *args)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def management_request(
    management_url: str, method: str, path: str, body: object | None = None, ca_pem: str | None = None
) -> object:
    """Call the management API; credentials come from the URL's userinfo, ``ca_pem`` verifies https."""
    parts = urllib.parse.urlsplit(management_url)
    auth = b64encode(f"{parts.username}:{parts.password}".encode()).decode()
    base = f"{parts.scheme}://{parts.hostname}:{parts.port}"
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Basic {auth}", "Content-Type": "application/json"}
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    context = ssl.create_default_context(cadata=ca_pem) if parts.scheme == "https" else None
    with urllib.request.urlopen(req, timeout=5, context=context) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


def management_get(management_url: str, path: str) -> object:
    return management_request(management_url, "GET", path)


def create_vhost(broker: Broker, name: str, tls: bool = False) -> str:
    """A fresh vhost the broker's user may fully use; returns the AMQP (``tls``: amqps) URL that points at it.

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
    url = broker.amqps_url if tls else broker.amqp_url
    if url is None:
        raise ValueError(f"broker {broker.node} has no TLS listener")
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path="/" + quoted))


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


def start(base: Path, options: Options | None = None) -> Broker:
    """Reuse a broker on 127.0.0.1:5672, or start our own node under ``base``.

    ``options`` (default: from the environment) other than plain 3.10 always start a node of our own.
    """
    options = options or Options.from_env()
    if options.shared and processes.port_open(AMQP_PORT):
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
    if not options.shared:
        return start_own(base, options)
    broker = prepare(base, Ports.default(), NODE, options, cookie=None)
    launch(broker)
    return broker


def start_own(base: Path, options: Options) -> Broker:
    """A node of our own on free ports, with its own node name, epmd and cookie: it meets no other broker."""
    ports = own_ports(tls=options.tls)
    broker = prepare(base, ports, node_name(ports), options, cookie=secrets.token_hex(20))
    launch(broker)
    return broker


def serves(broker: Broker, options: Options) -> bool:
    """Whether ``broker`` (e.g. the running dev environment's) is what ``options`` ask for."""
    private = broker.ports is not None and broker.ports.amqp != AMQP_PORT
    return (
        broker.version == options.version
        and (broker.amqps_url is not None or not options.tls)
        and (private or not options.private)
        and broker.dead_letter_confirm_timeout_s == options.dead_letter_confirm_timeout_s
    )


def prepare(base: Path, ports: Ports, node: str, options: Options, cookie: str | None) -> Broker:
    """Lay out a fresh node under ``base``: config, plugins, TLS files, cookie; no data from any earlier run.

    The node is throwaway, so what an earlier run left there (thousands of queues, a node that never
    stopped) is killed and wiped rather than recovered: a start never depends on how the last one ended.
    ``cookie`` None keeps the caller's HOME and cookie (the shared default node; others reach it with them).
    """
    suite = SUITES[options.version]
    root = debian_root.ensure(suite, ("rabbitmq-server",)) if suite else None
    if root is None:
        ensure_installed()
    files = NodeFiles(base)
    rabbitmq_teardown.kill_node(files.pid_file, ports.epmd)
    shutil.rmtree(files.data, ignore_errors=True)
    files.pid_file.unlink(missing_ok=True)
    base.mkdir(parents=True, exist_ok=True)
    if cookie is not None:
        write_cookie(files.home, cookie)
    broker = Broker(
        amqp_url=f"amqp://guest:guest@127.0.0.1:{ports.amqp}/",
        management_url=f"http://guest:guest@127.0.0.1:{ports.management}",
        node=node,
        owned=True,
        base=str(base),
        version=options.version,
        ports=ports,
        root=str(root) if root else None,
        home=str(files.home) if cookie is not None else None,
        dead_letter_confirm_timeout_s=options.dead_letter_confirm_timeout_s,
    )
    tls = None
    if options.tls:
        made = pki.generate_broker(base / "tls")
        tls = TLSFiles(ca_cert=made.ca_cert, cert=made.server_cert, key=made.server_key)
        broker = replace(
            broker,
            amqps_url=f"amqps://guest:guest@127.0.0.1:{ports.amqps}/",
            management_tls_url=f"https://guest:guest@127.0.0.1:{ports.management_tls}"
            if ports.management_tls
            else None,
            ca_pem=made.ca_cert.read_text(),
        )
    files.config.write_text(render_config(ports, tls))
    files.advanced_config.write_text(render_advanced_config(options.dead_letter_confirm_timeout_s))
    files.plugins.write_text(ENABLED_PLUGINS)
    return broker


def launch(broker: Broker) -> None:
    """Start the node laid out by ``prepare`` (again, after a stop or a kill: its data is kept) and wait for it."""
    log_file = broker.files.logs / "server.out"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    # A pid file left by a killed node would make `rabbitmqctl wait` give up on the dead pid at once.
    broker.files.pid_file.unlink(missing_ok=True)
    with log_file.open("ab") as out:
        subprocess.run(
            _command(broker, "rabbitmq-server", "-detached"),
            env={**os.environ, **_env(broker)},
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
        )
    _wait_booted(broker)


BOOT_TIMEOUT = 330.0
"""Seconds a node may take to boot: a cluster member waits up to 300 s at boot for the peers it knew."""


class NodeDiedAtBoot(RuntimeError):
    """The node's VM exited before it answered: ``rabbitmqctl wait`` would wait its whole timeout for it."""


def _wait_booted(broker: Broker) -> None:
    """Until the node answers (AMQP and the management API); fail at once when its VM is gone."""
    gone: list[float] = []

    def booted() -> bool:
        if ready(broker):
            return True
        alive = "beam.smp" in rabbitmq_teardown.node_processes(broker.files.pid_file).values()
        gone[:] = [] if alive else [*gone, time.monotonic()]
        if len(gone) >= 3:  # checked a few times: the detached start forks its VM before it returns
            raise NodeDiedAtBoot(f"{broker.node} exited while booting; see {broker.files.logs}")
        return False

    polling.eventually(booted, BOOT_TIMEOUT, f"{broker.node} booted", interval=1.0)


def stop(broker: Broker, shutdown_timeout: float = SHUTDOWN_TIMEOUT) -> None:
    """Stop the node if we started it, always: a reused broker is left alone.

    A node that does not shut down within ``shutdown_timeout`` (thousands of queues to stop, or hung)
    gets SIGTERM, then SIGKILL; only its own processes are signalled (see ``rabbitmq_teardown``).
    """
    if not broker.owned:
        return
    try:
        ctl(broker, "shutdown", timeout=shutdown_timeout)
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        log.warning("rabbitmqctl shutdown of %s failed, signalling its processes: %s", broker.node, e)
    rabbitmq_teardown.kill_node(broker.files.pid_file, (broker.ports or Ports.default()).epmd)


@contextlib.contextmanager
def running(base: Path) -> Iterator[Broker]:
    """A node laid out under ``base`` (or the reused one) for the block, stopped after it."""
    broker = start(base)
    try:
        yield broker
    finally:
        stop(broker)


# Fault helpers for the tests: they act on the running node, owned or reused.


def close_all_connections(broker: Broker, reason: str = "rabbitsync fault test") -> None:
    ctl(broker, "close_all_connections", reason)


def take_down(broker: Broker) -> None:
    """An outage: every connection drops and the listeners close, until ``bring_up``.

    A node we started stops whole (its data is kept) and ``bring_up`` boots it again. Only a reused
    broker gets ``stop_app``/``start_app`` instead: on RabbitMQ 3.10.8 that leaves some nodes without
    ``rabbit_fifo_dlx_sup``, after which every new quorum queue with at-least-once dead-lettering
    crashes on its first write and its channel's connection closes with 541 INTERNAL_ERROR (seen in CI:
    every later test on that node failed).
    """
    if broker.owned:
        stop(broker)
    else:
        ctl(broker, "stop_app", timeout=120)


DLX_SETTLE_S = 8.0
"""How long after a restart ``bring_up`` watches for the loss of ``rabbit_fifo_dlx_sup`` (RabbitMQ 3.10.8).

A quorum queue with at-least-once dead-lettering deleted while the booting node recovers it crashes
its dead-letter worker; two such crashes end the supervisor (``reached_max_restart_intensity``), and
from then on no such queue starts on the node: every consume gets 541 INTERNAL_ERROR until a restart.
In CI the operator deleted two queues a second after a fault test's restart, and every later test on
the shared node failed. Deletions come right after a boot, when a cleanup held back by the outage
goes through; the node is restarted once more if it happened."""


def bring_up(broker: Broker, settle_s: float = DLX_SETTLE_S) -> None:
    """The end of ``take_down``'s outage; then ``settle_s`` watching for the dead-letter supervisor's loss."""
    _boot(broker)
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        time.sleep(1)
        if _dead_lettering_lost(broker):
            log.warning("%s lost rabbit_fifo_dlx_sup after booting: restarting it once more", broker.node)
            take_down(broker)
            _boot(broker)
            return


def _boot(broker: Broker) -> None:
    if broker.owned:
        launch(broker)
    else:
        ctl(broker, "start_app", timeout=120)
        processes.wait_until(lambda: ready(broker), 60, "RabbitMQ after start_app")


def _dead_lettering_lost(broker: Broker) -> bool:
    """The node has the dead-letter supervisor's module but not the supervisor (RabbitMQ 3.10's loss)."""
    check = "code:which(rabbit_fifo_dlx_sup) =/= non_existing andalso whereis(rabbit_fifo_dlx_sup) =:= undefined."
    try:
        return ctl(broker, "eval", check, timeout=30).strip() == "true"
    except (RuntimeError, subprocess.TimeoutExpired):  # a node that does not answer is not this failure
        return False
