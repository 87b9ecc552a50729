"""Start, track and stop the local server processes the harness owns.

Processes run in their own session so they outlive ``make dev-up``; their pids are recorded with
the process start time so ``make dev-down`` never kills an unrelated process that reused a pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import polling


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    start_ticks: int
    """Start time in clock ticks since boot (/proc/PID/stat field 22): a pid plus this is unique."""
    log: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def spawn(
    name: str,
    argv: list[str],
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    clean_env: bool = False,
) -> ProcessRecord:
    """Start ``argv`` in its own session; ``clean_env`` gives it only ``env`` (a container's view)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env or {}) if clean_env else {**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    return ProcessRecord(name=name, pid=proc.pid, start_ticks=_start_ticks(proc.pid) or 0, log=str(log))


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces; everything after its closing parenthesis is fixed.
    return raw[raw.rindex(")") + 2 :].split()


def _start_ticks(pid: int) -> int | None:
    stat = _stat(pid)
    return int(stat[19]) if stat else None


def alive(record: ProcessRecord) -> bool:
    stat = _stat(record.pid)
    return stat is not None and stat[0] != "Z" and int(stat[19]) == record.start_ticks


def stop(record: ProcessRecord, timeout: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``timeout`` seconds."""
    if not alive(record):
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(record.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(record):
                _reap(record.pid)
                return
            time.sleep(0.1)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_until(check: Callable[[], bool], timeout: float, what: str, log: str | None = None) -> None:
    """Wait for a server to be ready; on timeout, a TimeoutError with the tail of its log."""
    try:
        polling.eventually(check, timeout, what)
    except AssertionError:
        tail = ""
        if log and Path(log).exists():
            lines = Path(log).read_text(errors="replace").splitlines()[-30:]
            tail = f"\n--- last lines of {log} ---\n" + "\n".join(lines)
        raise TimeoutError(f"{what} not ready after {timeout:.0f}s{tail}") from None
