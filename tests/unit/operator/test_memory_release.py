"""The operator hands freed heap memory back once per resync interval, and does nothing without glibc."""

from __future__ import annotations

import platform
import threading

import pytest

from rabbitsync.operator import memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc_trim")
def test_on_glibc_the_real_malloc_trim_is_called_and_answers() -> None:
    blocks = [bytearray(64 * 1024) for _ in range(2_000)]  # 128 MB freed below: something to return
    del blocks
    assert memory.release() is True


def test_without_malloc_trim_release_is_a_no_op() -> None:
    assert memory.release(trim=None) is False


def test_release_passes_zero_padding_and_says_whether_memory_went_back() -> None:
    calls: list[int] = []

    def trim(pad: int) -> int:
        calls.append(pad)
        return len(calls) % 2  # 1 (returned something), then 0

    assert memory.release(trim=trim) is True
    assert memory.release(trim=trim) is False
    assert calls == [0, 0]


def test_the_thread_releases_every_interval_until_stopped() -> None:
    stop, released = threading.Event(), threading.Event()
    calls: list[float] = []

    def action() -> bool:
        calls.append(0.0)
        if len(calls) == 3:
            released.set()
        return True

    thread = memory.trim_every(0.01, stop, action)
    assert released.wait(5)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert thread.daemon
