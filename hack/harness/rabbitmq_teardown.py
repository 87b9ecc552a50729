"""Stopping a RabbitMQ node the harness started, whatever state it is in.

``rabbitmqctl shutdown`` waits for the node to stop every queue: after a run that left thousands of
quorum queues it took longer than any sensible timeout, and a node that hangs (or is SIGSTOPped)
never answers at all. So teardown escalates: a bounded shutdown, then SIGTERM, then SIGKILL.

Signals only ever go to the node's own processes: those whose environment carries the node's pid
file path (``RABBITMQ_PID_FILE``, under the harness's own state directory), which every process the
node starts inherits (beam.smp, erl_child_setup, inet_gethost, and epmd when the node started it).
A broker the harness reused, or another test's node, has another pid file and is never touched.
An epmd is killed only when no other node is still registered with it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone, or a kernel thread
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def node_processes(pid_file: Path) -> dict[int, str]:
    """pid -> command of every live process started by the node whose pid file is ``pid_file``."""
    marker = str(pid_file)
    found = {}
    for pid in _pids():
        if pid != os.getpid() and _environ(pid).get("RABBITMQ_PID_FILE") == marker:
            command = _command(pid)
            if command and not _zombie(pid):
                found[pid] = command
    return found


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"


def epmd_names(port: int) -> list[str] | None:
    """Names registered with the epmd on ``port`` (its NAMES_REQ), or None when none answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(struct.pack(">HB", 1, 110))
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    except OSError:
        return None
    return [line.split()[1] for line in data[4:].decode(errors="replace").splitlines() if line.startswith("name ")]


def _signal_all(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
            if sig == signal.SIGTERM:
                # A stopped process keeps SIGTERM pending until it runs again: let it run and die.
                os.kill(pid, signal.SIGCONT)


def _wait_gone(find: Callable[[], dict[int, str]], timeout: float) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    left = find()
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = find()
    return left


GRACEFUL = ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0))
"""SIGTERM first (Erlang stops cleanly on it), SIGKILL for whatever still runs after 10 s."""
CRASH = ((signal.SIGKILL, 10.0),)
"""A node lost at once, as a machine failure would: the fault helpers' choice."""


def kill_node(
    pid_file: Path,
    epmd_port: int,
    escalation: Sequence[tuple[signal.Signals, float]] = GRACEFUL,
    keep_epmd: bool = False,
) -> None:
    """Signal the node's processes until none is left; its epmd last, and only if nothing else uses it."""

    def node_only() -> dict[int, str]:
        return {pid: cmd for pid, cmd in node_processes(pid_file).items() if cmd != "epmd"}

    def epmd_only() -> dict[int, str]:
        return {pid: cmd for pid, cmd in node_processes(pid_file).items() if cmd == "epmd"}

    for sig, wait in escalation:
        left = node_only()
        if not left:
            break
        log.warning("sending %s to node processes %s", sig.name, sorted(left.items()))
        _signal_all(left, sig)
        _wait_gone(node_only, wait)
    if left := node_only():
        raise RuntimeError(f"node processes survived {escalation[-1][0].name}: {left}")
    epmd = epmd_only()
    if epmd and not keep_epmd and _epmd_released(epmd_port, EPMD_RELEASE_WAIT):
        _signal_all(epmd, signal.SIGKILL)
        # kill() returns before the process is gone: on a loaded machine CI's next look still found it.
        if left := _wait_gone(epmd_only, 10.0):
            raise RuntimeError(f"epmd survived SIGKILL: {left}")


EPMD_RELEASE_WAIT = 5.0
"""How long epmd may keep a dead node's name: it drops it when it reads the closed connection, which
under load came after the node's processes were gone (CI saw the epmd left running)."""


def _epmd_released(port: int, timeout: float) -> bool:
    """Whether the epmd on ``port`` has no name registered, or none answers, within ``timeout``."""
    deadline = time.monotonic() + timeout
    while names := epmd_names(port):
        if time.monotonic() >= deadline:
            log.warning("epmd on %d kept: %s still registered", port, names)
            return False
        time.sleep(0.2)
    return True
