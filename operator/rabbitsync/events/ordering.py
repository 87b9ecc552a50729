"""The total order of writes to one entity, the heart of last-writer-wins.

``(version, source)``: the higher version wins, and on a tie the lexically greater source does.
Every replica sees the same pair for a given write, so each of them keeps the same winner
whatever order the events arrive in.
"""

from __future__ import annotations


def wins(version: int, source: str, current_version: int, current_source: str) -> bool:
    """Does the write ``(version, source)`` replace the current one? Equal pairs do not (idempotent)."""
    return (version, source) > (current_version, current_source)
