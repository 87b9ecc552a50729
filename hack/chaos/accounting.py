"""The final accounting of a fault run, pure: what was committed, what each copy applied, what differs.

Inputs are plain data read back from the services' own tables (outbox = committed events, inbox =
applied events, entity tables = the state) and from the broker's dead-letter queues, so the verdict
rests on what the product itself recorded, not on what the load generator believes it sent.

- *Committed*: every outbox row of every service in every cluster; its origin is the database it sits in.
- *Expected*: a committed event is due once in every (cluster, service) whose subscription lists its
  type, except its own origin, which has the effect already (the library skips its own events).
- *Lost*: due and not in that copy's inbox. *Duplicated*: in one inbox more than once (the inbox keys
  on the event id, so this stays zero unless the dedup key itself breaks). *Phantom*: applied although
  no service committed it: a forged or injected message got through.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Place = tuple[str, str]
"""(cluster, service)"""
Row = tuple[object, ...]


@dataclass(frozen=True)
class Committed:
    event_id: str
    type: str
    origin: Place


@dataclass(frozen=True)
class Tally:
    expected: int
    lost: dict[Place, list[str]] = field(default_factory=dict)
    duplicated: dict[Place, list[str]] = field(default_factory=dict)
    phantom: dict[Place, list[str]] = field(default_factory=dict)

    @property
    def lost_count(self) -> int:
        return sum(len(ids) for ids in self.lost.values())

    @property
    def duplicated_count(self) -> int:
        return sum(len(ids) for ids in self.duplicated.values())

    @property
    def phantom_count(self) -> int:
        return sum(len(ids) for ids in self.phantom.values())


def tally(
    committed: Iterable[Committed],
    subscriptions: Mapping[str, frozenset[str]],
    applied: Mapping[Place, Iterable[str]],
) -> Tally:
    """Compare what each (cluster, service) applied with what it was due; ``applied`` may repeat ids."""
    events = list(committed)
    known = {e.event_id for e in events}
    expected = 0
    lost: dict[Place, list[str]] = {}
    duplicated: dict[Place, list[str]] = {}
    phantom: dict[Place, list[str]] = {}
    for place, ids in sorted(applied.items()):
        counts = Counter(ids)
        due = [e.event_id for e in events if e.type in subscriptions.get(place[1], frozenset()) and e.origin != place]
        expected += len(due)
        _put(lost, place, [i for i in due if i not in counts])
        _put(duplicated, place, sorted(i for i, n in counts.items() if n > 1))
        _put(phantom, place, sorted(i for i in counts if i not in known))
    return Tally(expected=expected, lost=lost, duplicated=duplicated, phantom=phantom)


def _put(into: dict[Place, list[str]], place: Place, ids: list[str]) -> None:
    if ids:
        into[place] = ids


def divergence(tables: Mapping[str, Mapping[str, list[Row]]]) -> dict[str, list[str]]:
    """Per table, how the clusters' copies differ; ``tables[table][cluster]`` holds its rows (any order).

    Only differences are returned: a table whose copies are equal in every cluster is left out.
    """
    report: dict[str, list[str]] = {}
    for table, by_cluster in sorted(tables.items()):
        clusters = sorted(by_cluster)
        keyed = {c: {row[0]: row for row in by_cluster[c]} for c in clusters}
        problems = []
        for key in sorted({k for rows in keyed.values() for k in rows}, key=str):
            versions = {c: keyed[c].get(key) for c in clusters}
            if len({repr(v) for v in versions.values()}) > 1:
                problems.append(f"{key}: " + "; ".join(f"{c}={versions[c]!r}" for c in clusters))
        if problems:
            report[table] = problems
    return report


@dataclass(frozen=True)
class Attempt:
    """One REST write as the load generator saw it."""

    started: float
    cluster: str
    service: str
    status: int
    """HTTP status, 0 when no answer came (refused, reset, timed out)."""

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


def refused_during(attempts: Iterable[Attempt], windows: Iterable[tuple[float, float]]) -> list[Attempt]:
    """Writes refused while any window (a broker outage) was open: there must be none."""
    spans = list(windows)
    return [a for a in attempts if not a.accepted and any(lo <= a.started <= hi for lo, hi in spans)]


def attempted_during(attempts: Iterable[Attempt], windows: Iterable[tuple[float, float]]) -> int:
    spans = list(windows)
    return sum(1 for a in attempts if any(lo <= a.started <= hi for lo, hi in spans))


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    message_id: str
    reason: str
    """The sidecar's ``x-rabbitsync-reason``; empty when the broker dead-lettered it by itself."""
    broker_reason: str = ""
    """The broker's ``x-first-death-reason`` (``delivery_limit``, ``rejected``, ``expired``...), if any."""


def undead_poison(sent: Mapping[str, str], dead: Iterable[DeadLetter]) -> dict[str, str]:
    """Poison messages (id -> what it was) not found in any DLQ with a non-empty reason."""
    parked = {d.message_id for d in dead if d.reason}
    return {message_id: what for message_id, what in sorted(sent.items()) if message_id not in parked}


def summary(events: int, faults: int, lost: int, duplicated: int, dead_lettered: int, converged_s: float) -> str:
    """The run's last line, in the form CI and the README quote."""
    return (
        f"events={events} faults={faults} lost={lost} duplicated={duplicated} "
        f"dead_lettered={dead_lettered} converged_s={converged_s:.1f}"
    )
