"""Installing a Debian package the harness needs, when it is missing: the one place the harness calls apt.

``make test`` and ``make demo`` must work on a fresh Debian 12 machine with only the README's two
commands, so what the suites run (RabbitMQ, PostgreSQL, debootstrap, the real nodes' containerd and
friends) is installed on first use when we are root, and named in a clear error otherwise.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable


def install(*packages: str) -> None:
    """``apt-get install`` ``packages`` (after an index update); a clear error when not root."""
    if os.geteuid() != 0:
        raise RuntimeError(f"{' '.join(packages)} not installed; run: sudo apt-get install -y {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env)


def ensure(packages: Iterable[str]) -> None:
    """Install those of ``packages`` dpkg does not know as installed, in one go."""
    missing = [p for p in packages if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if missing:
        install(*missing)
