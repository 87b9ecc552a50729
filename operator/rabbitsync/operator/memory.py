"""Handing freed heap memory back to the system, once per resync interval.

glibc keeps memory a process freed for its next allocations, and returns only the top of the main
heap by itself. The operator's peak comes once, when many objects are created together, and never
again: measured with 1,000 subscriptions (``bench/operator_scale.py``, 2026-12-01), its RSS was 382
MB once all were Ready, ``malloc_trim(0)`` brought it to 257 MB, and it stayed at 261 MB through the
sweeps after. Each trim takes milliseconds. Where the C library has no ``malloc_trim`` (musl, say)
this is a no-op.
"""

from __future__ import annotations

import ctypes
import platform
import threading
from collections.abc import Callable


def _glibc_trim() -> Callable[[int], int] | None:
    if platform.libc_ver()[0] != "glibc":
        return None
    trim: Callable[[int], int] | None = getattr(ctypes.CDLL(None), "malloc_trim", None)
    return trim


_MALLOC_TRIM = _glibc_trim()


def release(trim: Callable[[int], int] | None = _MALLOC_TRIM) -> bool:
    """Return the heap's free pages to the system; whether anything was returned (False without glibc)."""
    return bool(trim and trim(0))


def trim_every(interval: float, stop: threading.Event, action: Callable[[], bool] = release) -> threading.Thread:
    """A daemon thread that calls ``action`` every ``interval`` seconds until ``stop`` is set."""

    def loop() -> None:
        while not stop.wait(interval):
            action()

    thread = threading.Thread(target=loop, name="rabbitsync-malloc-trim", daemon=True)
    thread.start()
    return thread
