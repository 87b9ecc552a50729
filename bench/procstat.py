"""Where a machine's CPU went, from ``/proc``: per process, per group of processes, and all cores.

The benches run every server on the same two cores as the code they measure; when a figure misses
its target because the machine is saturated, the split says which process to look at first.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores so far, from /proc/stat (idle and iowait count as not busy)."""
    fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


Snapshot = Callable[[], dict[tuple[int, str], tuple[str, float]]]
"""(pid, start time) -> (its group, CPU seconds so far), for every process counted."""


def _start_time(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


def _by_command(groups: Mapping[str, str]) -> Snapshot:
    def snapshot() -> dict[tuple[int, str], tuple[str, float]]:
        found: dict[tuple[int, str], tuple[str, float]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                group = next((name for name, needle in groups.items() if needle in command), None)
                if group is not None:
                    pid = int(entry.name)
                    found[pid, _start_time(pid)] = (group, cpu_seconds(pid))
            except OSError:  # gone meanwhile
                continue
        return found

    return snapshot


def _by_pid(processes: Mapping[str, list[int]]) -> Snapshot:
    def snapshot() -> dict[tuple[int, str], tuple[str, float]]:
        found: dict[tuple[int, str], tuple[str, float]] = {}
        for group, pids in processes.items():
            for pid in pids:
                try:
                    found[pid, _start_time(pid)] = (group, cpu_seconds(pid))
                except OSError:  # gone
                    continue
        return found

    return snapshot


class CpuSplit:
    """Each group's CPU from now until :meth:`percent`, in percent of one core, and the machine's busy share.

    A process started meanwhile counts from zero; one that exited meanwhile is not counted.
    """

    def __init__(self, groups: Iterable[str], snapshot: Snapshot) -> None:
        self._groups = tuple(groups)
        self._snapshot = snapshot
        self._started = time.monotonic()
        self._before = snapshot()
        self._busy_before = machine_busy()

    @classmethod
    def of_commands(cls, groups: Mapping[str, str]) -> CpuSplit:
        """``groups``: name -> a string its processes' command lines contain (the first match wins)."""
        return cls(groups, _by_command(groups))

    @classmethod
    def of_pids(cls, processes: Mapping[str, list[int]]) -> CpuSplit:
        """``processes``: name -> the pids of the group, known when the split starts."""
        return cls(processes, _by_pid(processes))

    def percent(self) -> dict[str, float]:
        elapsed = time.monotonic() - self._started
        split = dict.fromkeys(self._groups, 0.0)
        for key, (group, seconds) in self._snapshot().items():
            split[group] += seconds - self._before.get(key, (group, 0.0))[1]
        result = {name: round(100 * seconds / elapsed, 1) for name, seconds in split.items()}
        busy, total = (b - a for a, b in zip(self._busy_before, machine_busy(), strict=True))
        result["machine_busy_of_all_cores"] = round(100 * busy / total, 1) if total else 0.0
        return result
