"""Where a machine's CPU went, from ``/proc``: per process, per group of processes, and all cores.

The benches run every server on the same two cores as the code they measure; when a figure misses
its target because the machine is saturated, the split says which process to look at first.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds_or_zero(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:  # gone
        return 0.0


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores so far, from /proc/stat (idle and iowait count as not busy)."""
    fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def _by_process(groups: Mapping[str, str]) -> dict[tuple[int, str], tuple[str, float]]:
    """(pid, start time) -> (its group, CPU seconds so far), for every process in one of ``groups``."""
    found: dict[tuple[int, str], tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            start = (entry / "stat").read_text().rsplit(")", 1)[1].split()[19]
            group = next((name for name, needle in groups.items() if needle in command), None)
            if group is not None:
                found[int(entry.name), start] = (group, cpu_seconds(int(entry.name)))
        except OSError:  # gone meanwhile
            continue
    return found


class GroupSplit:
    """Each group's CPU from now until :meth:`percent`, in percent of one core, and the machine's busy share.

    ``groups``: name -> a string its processes' command lines contain (the first match wins). A process
    started meanwhile counts from zero; one that exited meanwhile is not counted.
    """

    def __init__(self, groups: Mapping[str, str]) -> None:
        self._groups = groups
        self._started = time.monotonic()
        self._before = _by_process(groups)
        self._busy_before = machine_busy()

    def percent(self) -> dict[str, float]:
        elapsed = time.monotonic() - self._started
        split = dict.fromkeys(self._groups, 0.0)
        for key, (group, seconds) in _by_process(self._groups).items():
            split[group] += seconds - self._before.get(key, (group, 0.0))[1]
        result = {name: round(100 * seconds / elapsed, 1) for name, seconds in split.items()}
        busy, total = (b - a for a, b in zip(self._busy_before, machine_busy(), strict=True))
        result["machine_busy_of_all_cores"] = round(100 * busy / total, 1) if total else 0.0
        return result
