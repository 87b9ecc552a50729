"""Installing a Debian package the harness needs, when it is missing: the one place the harness calls apt.

``make test`` and ``make demo`` must work on a fresh Debian 12 machine with only the README's two
commands, so what the suites run (RabbitMQ, PostgreSQL, Graphviz, debootstrap) is installed on first
use when we are root, and named in a clear error otherwise.
"""

from __future__ import annotations

import os
import subprocess


def install(package: str) -> None:
    """``apt-get install`` ``package`` (after an index update); a clear error when not root."""
    if os.geteuid() != 0:
        raise RuntimeError(f"{package} is not installed; run: sudo apt-get install -y {package}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env)
