"""Capped exponential backoff with jitter, for everything that redials the broker.

Jitter matters here: when the broker restarts, every sidecar of every service in both clusters
loses its connection at the same instant; without jitter they would all come back in lockstep.
"""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays ``initial * 2**n`` capped at ``cap``, each drawn uniformly from its upper half."""

    def __init__(self, initial: float = 0.1, cap: float = 15.0, rng: Callable[[], float] = random.random):
        if initial <= 0 or cap < initial:
            raise ValueError("need 0 < initial <= cap")
        self._initial = initial
        self._cap = cap
        self._rng = rng
        self._step = 0

    def next(self) -> float:
        ceiling = min(self._cap, self._initial * 2**self._step)
        self._step = min(self._step + 1, 32)  # 2**32 * initial is past any sane cap; avoid huge ints
        return ceiling / 2 + self._rng() * ceiling / 2

    def reset(self) -> None:
        self._step = 0
