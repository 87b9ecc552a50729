"""The retry schedule: which delay a failed delivery waits before its next attempt."""

from __future__ import annotations

from rabbitsync.backoff import capped_exponential


def backoff_delays(max_attempts: int, initial_ms: int, max_ms: int) -> list[int]:
    """Delay before attempt 2, 3, ... ``max_attempts``: doubling from ``initial_ms``, capped at ``max_ms``.

    ``max_attempts`` counts the first delivery, so 1 means "never retry".
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if initial_ms < 1 or max_ms < initial_ms:
        raise ValueError("need 1 <= initial_ms <= max_ms")
    return [capped_exponential(step, initial_ms, max_ms) for step in range(max_attempts - 1)]
