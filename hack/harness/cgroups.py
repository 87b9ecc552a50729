"""A node's cgroup subtree (cgroup v1): where all of its processes live, so teardown finds every one.

The kubelet's ``cgroupRoot`` is ``/rabbitsync/<node id>``: pods land in ``kubepods`` below it, and
the harness puts the node's own processes (containerd, its shims, the kubelet, kube-proxy, the
forwarder, the scheduler) in ``system`` below it. Teardown signals every pid of the subtree in
every hierarchy, then removes the directories: nothing a node started can outlive it, including
after a crash (the next start of the same node sweeps the same subtree first).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

MOUNTS = Path("/proc/self/mounts")


def hierarchies(mounts: str, kinds: tuple[str, ...] = ("cgroup",)) -> list[Path]:
    """The mount points of the v1 hierarchies (by default the unified v2 mount of a hybrid host is not used)."""
    return [Path(fields[1]) for fields in (line.split() for line in mounts.splitlines()) if fields[2] in kinds]


def _hierarchies() -> list[Path]:
    return hierarchies(MOUNTS.read_text())


def _hierarchies_to_clean() -> list[Path]:
    # libcontainer (the kubelet, runc) mirrors the pods' cgroups into the unified mount of a hybrid host,
    # and nothing removes them once the node is gone: empty directories there piled up run after run.
    return hierarchies(MOUNTS.read_text(), ("cgroup", "cgroup2"))


def create(path: str) -> None:
    """``path`` (``/a/b``) in every hierarchy; cpuset levels inherit their parent's CPUs and memory nodes."""
    for root in _hierarchies():
        current = root
        for part in Path(path).relative_to("/").parts:
            parent, current = current, current / part
            current.mkdir(exist_ok=True)
            if (current / "cpuset.cpus").exists():
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    if not (current / knob).read_text().strip():
                        (current / knob).write_text((parent / knob).read_text())


def set_knob(path: str, knob: str, value: str) -> None:
    """Write ``value`` to ``knob`` (e.g. ``cpu.shares``) of ``path`` in the hierarchy that has it."""
    for root in _hierarchies():
        target = root / path.lstrip("/") / knob
        if target.exists():
            target.write_text(value)


def add(path: str, pid: int) -> None:
    for root in _hierarchies():
        (root / path.lstrip("/") / "cgroup.procs").write_text(str(pid))


def _subtree(top: Path) -> list[Path]:
    """``top`` and every cgroup below it, deepest first; cgroups vanishing meanwhile are skipped."""
    # os.walk ignores directories that disappear under it: the kubelet and runc remove cgroups while we look.
    return [Path(d) for d, _, _ in os.walk(top, topdown=False)]


def pids(path: str) -> set[int]:
    found: set[int] = set()
    for root in _hierarchies():
        for cgroup in _subtree(root / path.lstrip("/")):
            with contextlib.suppress(OSError):
                found.update(int(p) for p in (cgroup / "cgroup.procs").read_text().split())
    return found


def _signal_all(path: str, sig: signal.Signals) -> None:
    for pid in pids(path):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def stop(path: str, timeout: float = 5.0) -> None:
    """SIGTERM every process of the subtree, SIGKILL what is left, then remove the subtree."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        _signal_all(path, sig)
        deadline = time.monotonic() + wait
        while pids(path) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not pids(path):
            break
    for root in _hierarchies_to_clean():
        # Deepest first: a cgroup directory can only go once it has no children.
        for cgroup in _subtree(root / path.lstrip("/")):
            with contextlib.suppress(OSError):
                cgroup.rmdir()


def remove_if_empty(path: str) -> None:
    """Remove ``path`` where no other node's cgroup is left below it."""
    for root in _hierarchies_to_clean():
        with contextlib.suppress(OSError):
            (root / path.lstrip("/")).rmdir()
