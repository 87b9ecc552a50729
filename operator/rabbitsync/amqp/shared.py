"""The cluster's shared objects as this process observed them lately, so that each reconcile need not look again.

Every subscription of a cluster retries through the same shared objects (``topology.delays``: the
delay exchanges and queues, the retries exchange and the orphaned retries' queue). With the default
retry schedule they took 16 of the 22 management calls of each observation of a subscription, and a
new subscription is observed twice (before and after applying): 42 calls, 11 without them (counted
on RabbitMQ 3.10). A subscription's observation takes them from here instead while they are fresh:
observed on the same broker less than ``fresh_seconds`` ago, with no apply since that declared or
bound one of them, and no vhost listing since. The drift sweep lists the vhost every resync interval
and forgets them (``forget``), so a shared object deleted out of band is seen by the sweep, and the
reconciles it asks for observe it again, as before. The subscription's own objects are always
observed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from rabbitsync.topology import naming
from rabbitsync.topology.diff import Plan
from rabbitsync.topology.model import Binding, Observed, ObservedExchange, ObservedQueue


@dataclass(frozen=True)
class _Seen:
    """The shared part of one observation: the shared queues and exchanges there, the bindings to those queues."""

    queues: dict[str, ObservedQueue]
    bindings: frozenset[Binding]
    exchanges: dict[str, ObservedExchange]
    at: float


class RecentShared:
    def __init__(self, fresh_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._fresh = fresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, frozenset[str], frozenset[str]], _Seen] = {}
        """(broker, shared queues, exchanges) -> what an observation of exactly those found."""

    def observe(
        self,
        broker: str,
        observe: Callable[..., Observed],
        exchange: str,
        main_queue: str,
        queues: Collection[str] | None = None,
        *,
        shared: Collection[str] = (),
        exchanges: Collection[str] = (),
    ) -> Observed:
        """``observe(exchange, main_queue, queues, shared=shared, exchanges=exchanges)`` (``Broker.observe``
        on ``broker``), with ``shared`` and ``exchanges`` as seen lately when fresh. ``queues`` are the
        subscription's own, as ``observe_and_sync`` passes them: always looked at."""
        if not shared and not exchanges:
            return observe(exchange, main_queue, queues)
        names = frozenset(shared)
        key = (broker, names, frozenset(exchanges))
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
        if seen is None or now - seen.at >= self._fresh:
            observed = observe(exchange, main_queue, queues, shared=shared, exchanges=exchanges)
            part = _Seen(
                queues={name: q for name, q in observed.queues.items() if name in names},
                bindings=frozenset(b for b in observed.bindings if b.queue in names),
                exchanges=dict(observed.exchanges),
                at=now,
            )
            with self._lock:
                self._seen[key] = part
            return observed
        own = observe(exchange, main_queue, queues)
        return Observed(
            exchange=own.exchange,
            queues={**own.queues, **seen.queues},
            bindings=own.bindings | seen.bindings,
            exchanges=seen.exchanges,
            policies=own.policies,
        )

    def applied(self, broker: str, plan: Plan) -> None:
        """``plan`` was (perhaps partly) carried out on ``broker``: forget what it may have changed."""
        if touches_shared(plan):
            self.forget(broker)

    def forget(self, broker: str) -> None:
        """The shared objects of ``broker`` may have changed (a plan declared them, the vhost was listed)."""
        with self._lock:
            for key in [k for k in self._seen if k[0] == broker]:
                del self._seen[key]


def touches_shared(plan: Plan) -> bool:
    """``plan`` declares, binds or unbinds, or deletes a shared object."""
    queues = [q.name for q in plan.declare_queues] + [d.name for d in plan.delete_queues]
    queues += [b.queue for b in (*plan.bind, *plan.unbind)]
    return bool(plan.declare_exchanges) or any(naming.shared_by_cluster(q) for q in queues)
