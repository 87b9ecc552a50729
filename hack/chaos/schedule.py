"""When each fault strikes: a plan laid out over the write stream, pure and seeded so a run can be repeated.

Faults are placed by *events written*, not by wall-clock time: the same plan then covers a 5,000-event
CI run and a 100,000-event soak alike, whatever the machine's speed. The stream is cut into rounds;
each round holds every fault kind once, in a seeded order, evenly spaced, so no two faults fall on
the same event and the first and last events of a round stay fault-free (warm-up, then time to settle).
Faults run one after the other, never overlapping: the broker's outage is then the only thing wrong
while the suite checks that the REST APIs keep accepting writes.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass


class Kind(enum.Enum):
    CONNECTIONS_CLOSED = "connections-closed"
    """Every client connection force-closed through the management API."""
    BROKER_RESTART = "broker-restart"
    """Every node of the broker stopped for a while, then started: every client is cut off."""
    NODE_LOST = "node-lost"
    """One node of the three-node cluster SIGKILLed under load, then started again: it rejoins."""
    SIDECAR_KILLED = "sidecar-killed"
    RELAY_KILLED = "relay-killed"
    """SIGKILL of a service's web process, which runs the outbox relay."""
    OPERATOR_KILLED = "operator-killed"
    APISERVER_RESTART = "apiserver-restart"
    DATABASE_OUTAGE = "database-outage"
    """PostgreSQL of one service stopped for a while, then started."""
    POISON = "poison"
    """Messages no consumer can apply, published with a real service user's credentials."""


ALL_KINDS = tuple(Kind)
ROUND_EVENTS = 5_000
"""Events per round: a CI run is one round, a soak of 100,000 events is twenty."""


@dataclass(frozen=True)
class Fault:
    at_event: int
    """Strikes once this many writes have been accepted across both clusters."""
    kind: Kind
    target: str
    """Which cluster (``east``/``west``) it hits; the broker and the poison are shared, named ``broker``."""


SHARED = "broker"
_SHARED_KINDS = frozenset({Kind.CONNECTIONS_CLOSED, Kind.BROKER_RESTART, Kind.NODE_LOST, Kind.POISON})


def plan(
    events: int,
    kinds: tuple[Kind, ...] = ALL_KINDS,
    seed: int = 0,
    clusters: tuple[str, ...] = ("east", "west"),
    pinned: Mapping[Kind, str] | None = None,
) -> list[Fault]:
    """Every kind once per round of ``ROUND_EVENTS`` (at least one round), ordered by ``at_event``.

    Per-cluster kinds alternate between ``clusters``; ``pinned`` fixes a kind's target (the database
    outage can only hit the cluster whose service runs on PostgreSQL).
    """
    pinned = pinned or {}
    if events <= 0 or not kinds:
        return []
    rng = random.Random(seed)
    rounds = max(1, events // ROUND_EVENTS)
    size = events / rounds
    faults = []
    for index in range(rounds):
        order = list(kinds)
        rng.shuffle(order)
        start = index * size
        for slot, kind in enumerate(order, start=1):
            at = int(start + size * slot / (len(order) + 1))
            target = pinned.get(kind) or (SHARED if kind in _SHARED_KINDS else clusters[(index + slot) % len(clusters)])
            faults.append(Fault(at_event=max(1, at), kind=kind, target=target))
    return sorted(faults, key=lambda f: f.at_event)
