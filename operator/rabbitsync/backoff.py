"""Capped exponential backoff: the one schedule behind every retry in rabbitsync.

The broker retry queues (``topology.retry``), the operator's requeue delays, the relay and the
sidecar redialling the broker all wait ``initial * 2**n`` capped at a maximum. Defined once here,
at the bottom of the package (it imports nothing from rabbitsync), so the schedules cannot drift.

Jitter matters for redialling: when the broker restarts, every sidecar of every service in both
clusters loses its connection at the same instant; without jitter they would all come back in
lockstep. The same holds for the operator's requeues: a broker outage fails every subscription's
reconcile at once, and 1,000 of them must not retry in the same second. Delay queues need no jitter:
their schedule is part of a contract.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

Number = TypeVar("Number", int, float)

_MAX_DOUBLINGS = 64
"""2**64 times any initial delay is past any sane cap; stopping there keeps the arithmetic small."""


def capped_exponential(step: int, initial: Number, cap: Number) -> Number:
    """``min(initial * 2**step, cap)`` for the 0-based ``step``: ints stay ints (milliseconds)."""
    if step < 0:
        raise ValueError("step must be at least 0")
    return min(initial * (1 << min(step, _MAX_DOUBLINGS)), cap)


def jittered(ceiling: float, rng: Callable[[], float] = random.random) -> float:
    """A delay drawn uniformly from the upper half of ``ceiling``: spread out, never below half of it."""
    return ceiling / 2 + rng() * ceiling / 2


RETRY_INITIAL_SECONDS = 2.0
"""The first delay before retrying a failed reconcile or cleanup in the operator."""


def retry_delay(attempt: int, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Seconds before retry ``attempt`` (0-based) of a failed reconcile: :func:`capped_exponential` from
    :data:`RETRY_INITIAL_SECONDS` up to ``cap``, :func:`jittered`, so objects that failed together spread out."""
    return jittered(float(capped_exponential(attempt, RETRY_INITIAL_SECONDS, cap)), rng)


class Backoff:
    """Successive delays of :func:`capped_exponential`, each drawn uniformly from its upper half."""

    def __init__(self, initial: float = 0.1, cap: float = 15.0, rng: Callable[[], float] = random.random) -> None:
        if initial <= 0 or cap < initial:
            raise ValueError("need 0 < initial <= cap")
        self._initial = initial
        self._cap = cap
        self._rng = rng
        self._step = 0

    def next(self) -> float:
        """The delay before the next attempt, seconds; each call doubles the ceiling up to the cap."""
        ceiling = capped_exponential(self._step, self._initial, self._cap)
        self._step = min(self._step + 1, _MAX_DOUBLINGS)
        return jittered(ceiling, self._rng)

    def reset(self) -> None:
        """After a success: the next failure waits the shortest delay again."""
        self._step = 0
