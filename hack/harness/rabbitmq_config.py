"""What one RabbitMQ node of the harness is made of: its ports, its files, its config and environment.

Pure: no process is started here. ``rabbitmq.py`` starts nodes from these values, the cluster and the
chroot'ed 4.0 node reuse them, and the unit tests check them without a broker. Every node the harness
starts apart from the default one (5672) gets a whole block of its own ports, epmd included, so it
never meets the shared dev broker, nor another test's node, nor a node of another Erlang version.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
from dataclasses import dataclass
from pathlib import Path

DEFAULT_EPMD_PORT = 4369


@dataclass(frozen=True)
class Ports:
    """The TCP ports of one node; ``amqps`` and ``management_tls`` are 0 when TLS is off."""

    amqp: int
    management: int
    dist: int
    epmd: int
    amqps: int = 0
    management_tls: int = 0

    @classmethod
    def default(cls) -> Ports:
        """RabbitMQ's own defaults: what ``make dev-up`` has always used."""
        return cls(amqp=5672, management=15672, dist=25672, epmd=DEFAULT_EPMD_PORT)

    def with_tls(self, amqps: int, management_tls: int) -> Ports:
        return Ports(self.amqp, self.management, self.dist, self.epmd, amqps, management_tls)


# Below Linux's ephemeral range (32768+), so an outgoing connection never takes a node's port
# between allocation and the node's start, and above the well-known ports of the dev environment.
PORT_RANGE = range(20000, 32000)


def allocate_ports(count: int, candidates: range = PORT_RANGE) -> list[int]:
    """``count`` distinct free loopback ports, all held open at once so none is handed out twice."""
    with contextlib.ExitStack() as stack:
        picked: list[int] = []
        for port in random.sample(candidates, len(candidates)):
            s = stack.enter_context(socket.socket())
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            picked.append(port)
            if len(picked) == count:
                return picked
    raise RuntimeError(f"fewer than {count} free ports in {candidates}")


def own_ports(*, tls: bool, epmd: int | None = None) -> Ports:
    """A fresh block of ports; nodes of one cluster pass the same ``epmd`` so they can find each other."""
    picked = allocate_ports(6)
    ports = Ports(amqp=picked[0], management=picked[1], dist=picked[2], epmd=epmd or picked[3])
    return ports.with_tls(picked[4], picked[5]) if tls else ports


def node_name(ports: Ports, prefix: str = "rabbitsync") -> str:
    """A node name no other harness node uses: its AMQP port is unique on this machine."""
    return f"{prefix}-{ports.amqp}@localhost"


@dataclass(frozen=True)
class TLSFiles:
    """PEM files the node serves TLS with (paths as the node sees them)."""

    ca_cert: Path
    cert: Path
    key: Path


def render_config(ports: Ports, tls: TLSFiles | None = None) -> str:
    """The node's ``rabbitmq.conf``: listeners on loopback only, guest allowed from loopback."""
    lines = [
        f"listeners.tcp.default = 127.0.0.1:{ports.amqp}",
        "management.tcp.ip = 127.0.0.1",
        f"management.tcp.port = {ports.management}",
        "loopback_users = none",
        "# Quicker detection of dead peers for the fault tests; the client side sets heartbeats too.",
        "heartbeat = 10",
    ]
    if tls is not None:
        if not ports.amqps:
            raise ValueError("a TLS node needs an amqps port")
        lines += _tls_lines(ports, tls)
    return "\n".join(lines) + "\n"


def render_advanced_config(dead_letter_confirm_timeout_s: float | None = None) -> str:
    """The node's ``advanced.config`` (Erlang terms), for what ``rabbitmq.conf`` has no key for.

    ``dead_letter_confirm_timeout_s``: how long a quorum queue's dead-letter worker waits for the
    target queue's confirm before it sends an unconfirmed batch again (RabbitMQ's default: 180 s).
    """
    if dead_letter_confirm_timeout_s is None:
        return "[].\n"
    ms = round(dead_letter_confirm_timeout_s * 1000)
    return f"[{{rabbit, [{{dead_letter_worker_publisher_confirm_timeout, {ms}}}]}}].\n"


def _tls_lines(ports: Ports, tls: TLSFiles) -> list[str]:
    # Clients verify the server; the server asks no client certificate (password authentication).
    lines = [
        f"listeners.ssl.default = 127.0.0.1:{ports.amqps}",
        f"ssl_options.cacertfile = {tls.ca_cert}",
        f"ssl_options.certfile = {tls.cert}",
        f"ssl_options.keyfile = {tls.key}",
        "ssl_options.verify = verify_none",
        "ssl_options.fail_if_no_peer_cert = false",
    ]
    if ports.management_tls:
        lines += [
            "management.ssl.ip = 127.0.0.1",
            f"management.ssl.port = {ports.management_tls}",
            f"management.ssl.cacertfile = {tls.ca_cert}",
            f"management.ssl.certfile = {tls.cert}",
            f"management.ssl.keyfile = {tls.key}",
        ]
    return lines


ENABLED_PLUGINS = "[rabbitmq_management].\n"


@dataclass(frozen=True)
class NodeFiles:
    """Where one node keeps everything, all under its base directory (its data is wiped at each fresh start)."""

    base: Path

    @property
    def config(self) -> Path:
        return self.base / "rabbitmq.conf"

    @property
    def advanced_config(self) -> Path:
        return self.base / "advanced.config"

    @property
    def plugins(self) -> Path:
        return self.base / "enabled_plugins"

    @property
    def data(self) -> Path:
        return self.base / "mnesia"

    @property
    def logs(self) -> Path:
        return self.base / "log"

    @property
    def pid_file(self) -> Path:
        return self.base / "rabbitmq.pid"

    @property
    def home(self) -> Path:
        """HOME of a node with its own cookie; the default node keeps the caller's (others reach it with it)."""
        return self.base / "home"


def node_env(files: NodeFiles, node: str, ports: Ports, home: Path) -> dict[str, str]:
    """The variables ``rabbitmq-server`` and ``rabbitmqctl`` need to find this node and only this one.

    ``RABBITMQ_PID_FILE`` also marks every process of the node (each inherits it): teardown finds the
    node's processes by it, so it can never hit a broker it did not start.
    """
    env = {
        "RABBITMQ_CONFIG_FILE": str(files.config),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(files.advanced_config),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(files.plugins),
        "RABBITMQ_MNESIA_BASE": str(files.data),
        "RABBITMQ_LOG_BASE": str(files.logs),
        "RABBITMQ_PID_FILE": str(files.pid_file),
        "RABBITMQ_NODENAME": node,
        "HOME": str(home),
    }
    if ports != Ports.default():
        env["RABBITMQ_DIST_PORT"] = str(ports.dist)
        env["ERL_EPMD_PORT"] = str(ports.epmd)
    return env


def write_cookie(home: Path, cookie: str) -> None:
    """The Erlang cookie every node of a cluster (and its rabbitmqctl) must share; Erlang wants it 0400."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / ".erlang.cookie"
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "w") as f:
        f.write(cookie)
