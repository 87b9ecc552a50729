"""Which acks to send for deliveries settled in any order: the fewest frames, never a wrong message.

A delivery is acked once its event is committed (or its copy confirmed in a retry or dead-letter
queue). With batches and parallel lanes they settle out of order, and an ack with ``multiple=True``
acknowledges *every* outstanding delivery up to its tag on that channel, so it may only cover
deliveries that are all settled. :class:`Acks` keeps each channel's outstanding tags in order:
settled ones at the front go in one ``multiple`` ack, a settled one behind an unsettled one is
acked alone at once (holding it back would hold a prefetch slot). Pure bookkeeping, unit-tested.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable


class Acks:
    def __init__(self) -> None:
        self._outstanding: dict[int, OrderedDict[int, bool]] = {}

    def received(self, channel: int, tag: int) -> None:
        """Delivery ``tag`` of ``channel`` is being handled (tags of a channel come in ascending order)."""
        self._outstanding.setdefault(channel, OrderedDict())[tag] = False

    def settle(self, channel: int, tags: Iterable[int]) -> list[tuple[int, bool]]:
        """Mark ``tags`` settled: the acks to send now, as ``(tag, multiple)``; none for a forgotten channel."""
        outstanding = self._outstanding.get(channel)
        if outstanding is None:
            return []
        settled = [tag for tag in tags if tag in outstanding]
        for tag in settled:
            outstanding[tag] = True
        acks: list[tuple[int, bool]] = []
        front, count = 0, 0
        while outstanding and outstanding[next(iter(outstanding))]:
            front, _ = outstanding.popitem(last=False)
            count += 1
        if count:
            acks.append((front, count > 1))
        for tag in settled:
            if tag in outstanding:  # behind one still unsettled
                del outstanding[tag]
                acks.append((tag, False))
        return acks

    def forget(self, channel: int) -> None:
        """The channel is gone: its unacked deliveries went back to the queue, none may be acked."""
        self._outstanding.pop(channel, None)

    def knows(self, channel: int) -> bool:
        return channel in self._outstanding
