"""A throwaway PostgreSQL on loopback for the tests: Debian's ``postgresql`` package, no service.

``initdb`` and ``postgres`` run as the ``postgres`` OS user (``runuser``) when we are root, with the
data directory and the unix socket in a fresh temporary directory, ``fsync=off`` (the data dies
with the test session), trust authentication on 127.0.0.1 and a free port. ``running()`` yields a
``DATABASE_URL`` for a freshly created database and stops and deletes the server afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness import apt, processes

OS_USER = "postgres"


def find_bindir() -> Path | None:
    """The directory holding ``initdb``/``pg_ctl``/``postgres`` (newest version), or None."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version(p.parent.name))
    for bindir in reversed(candidates):
        if all((bindir / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    initdb = shutil.which("initdb")
    if initdb:
        bindir = Path(initdb).resolve().parent
        if (bindir / "postgres").exists() and (bindir / "pg_ctl").exists():
            return bindir
    return None


def _version(name: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return (0,)


def ensure_installed() -> Path:
    """The server binaries, installing Debian's ``postgresql`` first when we are root and they are missing."""
    bindir = find_bindir()
    if bindir is not None:
        return bindir
    apt.install("postgresql")
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("apt-get installed postgresql but no initdb/pg_ctl/postgres under /usr/lib/postgresql")
    return bindir


@dataclass(frozen=True)
class Server:
    url: str
    """``DATABASE_URL`` of the database created for the tests."""
    admin_url: str
    port: int
    base: Path
    record: processes.ProcessRecord


def _as_owner(argv: list[str]) -> list[str]:
    """Run as the ``postgres`` OS user when we are root (the server refuses to run as root)."""
    return ["runuser", "-u", OS_USER, "--", *argv] if os.geteuid() == 0 else argv


def start(database: str = "rabbitsync", timeout: float = 60.0) -> Server:
    bindir = ensure_installed()
    # Not under pytest's tmp dirs: those are 0700 root, and the server runs as another user.
    base = Path(tempfile.mkdtemp(prefix="rabbitsync-pg-"))
    data = base / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, OS_USER)
        shutil.chown(data, OS_USER)
    log = base / "postgres.log"
    init = subprocess.run(
        _as_owner([str(bindir / "initdb"), "-D", str(data), "-U", OS_USER, "--auth=trust", "-E", "UTF8", "--no-sync"]),
        capture_output=True,
        text=True,
        cwd=base,
    )
    if init.returncode != 0:
        raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
    port = processes.free_port()
    record = processes.spawn(
        "postgres",
        _as_owner(
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={base}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ]
        ),
        log,
        cwd=base,
    )
    admin_url = f"postgresql://{OS_USER}@127.0.0.1:{port}/postgres"
    url = f"postgresql://{OS_USER}@127.0.0.1:{port}/{database}"
    server = Server(url=url, admin_url=admin_url, port=port, base=base, record=record)
    try:
        processes.wait_until(lambda: _accepts(admin_url, record), timeout, "postgres", log=str(log))
        import psycopg

        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
    except BaseException:
        stop(server, bindir)
        raise
    return server


def _accepts(url: str, record: processes.ProcessRecord) -> bool:
    if not processes.alive(record):
        raise RuntimeError("postgres exited during startup")
    if not processes.port_open(int(url.rsplit(":", 1)[1].split("/")[0])):
        return False
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def stop(server: Server, bindir: Path | None = None) -> None:
    """A fast shutdown (open client connections are cut), then the process group; the files go too."""
    bindir = bindir or find_bindir()
    if bindir is not None and processes.alive(server.record):
        subprocess.run(
            _as_owner([str(bindir / "pg_ctl"), "stop", "-D", str(server.base / "data"), "-m", "fast", "-t", "20"]),
            capture_output=True,
            cwd=server.base,
        )
    processes.stop(server.record)
    shutil.rmtree(server.base, ignore_errors=True)


@contextlib.contextmanager
def running(database: str = "rabbitsync") -> Iterator[Server]:
    server = start(database)
    try:
        yield server
    finally:
        stop(server)
