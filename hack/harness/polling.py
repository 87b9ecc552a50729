"""Waiting for something to become true, the one way the harness and the tests do it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def eventually(
    check: Callable[[], T],
    timeout: float,
    what: str,
    *,
    interval: float = 0.2,
    tolerate: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll ``check`` until it returns something truthy and return that.

    Exceptions of the ``tolerate`` types count as "not yet" (a server restarting). On timeout an
    AssertionError names ``what`` and the last value or exception seen, so a failing test says why.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except tolerate as e:
            last = e
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s; last seen: {last!r}")
        time.sleep(interval)
