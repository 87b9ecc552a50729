"""A Debian root of another release, to run its RabbitMQ under ``chroot`` without Docker.

Debian 12 ships RabbitMQ 3.10 (end of life); Debian 13 (trixie) ships 4.0 with Erlang 27. The
harness builds a minimal trixie root with ``debootstrap`` once, caches it under
``~/.cache/rabbitsync/debian-<suite>/`` (never deleted by the harness), and runs commands in it.

Each command runs in a mount namespace of its own (``unshare --mount``): /proc, /dev and /sys, and
the node's own directories (bound at the same path, so a path means the same inside and out), are
mounted there and vanish with the last process of the namespace. Nothing is left mounted on the
host, the cached root stays pristine, and any number of nodes share it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from harness import apt

log = logging.getLogger(__name__)

_FALLBACK_MIRROR = "http://deb.debian.org/debian"
_HOSTS = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rabbitsync"


def root_dir(suite: str) -> Path:
    return cache_root() / f"debian-{suite}"


def mirror_from_sources(texts: Sequence[str]) -> str | None:
    """The Debian main archive named in apt's sources (deb822 ``URIs:`` or one-line ``deb`` entries)."""
    for text in texts:
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("#"):
                continue
            match = re.match(r"^(?:URIs:\s*|deb(?:\s+\[[^\]]*\])?\s+)(\S+)", line)
            if match and match.group(1).rstrip("/").endswith("/debian"):
                return match.group(1).rstrip("/")
    return None


def mirror() -> str:
    """The mirror this machine's apt uses (the only one it may reach), else Debian's default."""
    paths = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    texts = [p.read_text(errors="replace") for p in paths if p.is_file() and p.suffix in (".list", ".sources")]
    return mirror_from_sources(texts) or _FALLBACK_MIRROR


def debootstrap_command(suite: str, target: Path, packages: Sequence[str], mirror_url: str) -> list[str]:
    return [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(packages)}",
        suite,
        str(target),
        mirror_url,
    ]


def ensure(suite: str, packages: Sequence[str]) -> Path:
    """The cached root of ``suite`` with ``packages``, built (about a minute) when missing."""
    root = root_dir(suite)
    done = root / ".rabbitsync-complete"
    if done.exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with (root.parent / f".debian-{suite}.lock").open("w") as lock:
        # Two test sessions may ask at once: one builds, the other waits and reuses it.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return root
        _ensure_debootstrap()
        scratch = root.parent / f".debian-{suite}.building"
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        started = time.monotonic()
        log.info("building a Debian %s root with %s (cached in %s)", suite, ", ".join(packages), root)
        subprocess.run(debootstrap_command(suite, scratch, packages, mirror()), check=True, capture_output=True)
        (scratch / "etc" / "hosts").write_text(_HOSTS)
        scratch.rename(root)
        done.write_text(f"{suite} {' '.join(packages)}\n")
        log.info("Debian %s root built in %.0fs", suite, time.monotonic() - started)
    return root


def _ensure_debootstrap() -> None:
    if not shutil.which("debootstrap"):
        apt.install("debootstrap")


def chroot_command(root: Path, argv: Sequence[str], binds: Sequence[Path] = ()) -> list[str]:
    """``argv`` run inside ``root`` in a private mount namespace with /proc, /dev, /sys and ``binds``."""
    r = shlex.quote(str(root))
    script = [
        "set -e",
        f"mount -t proc proc {r}/proc",
        f"mount --rbind /dev {r}/dev",
        f"mount -t sysfs sysfs {r}/sys",
    ]
    for path in binds:
        inside = shlex.quote(f"{root}{path}")
        script += [f"mkdir -p {inside}", f"mount --bind {shlex.quote(str(path))} {inside}"]
    script.append(f'exec chroot {r} "$@"')
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", "\n".join(script), "sh", *argv]
