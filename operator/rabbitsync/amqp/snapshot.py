"""Everything one broker vhost holds, listed once, seen as many subscriptions' observations. Pure.

The drift sweep compares every desired topology on a broker against one listing (exchanges, queues,
bindings, policies: four management calls, whatever the number of subscriptions) instead of observing each
subscription on its own (an exchange, a queue list and a call per queue). Queues are grouped by
the main queue they belong to once, and indexed by name for the shared ones (which belong to no main
queue), so projecting one subscription costs dictionary lookups, not a regex over every queue of the vhost.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from rabbitsync.topology.model import Binding, Observed, ObservedExchange, ObservedQueue, Policy

# A queue's owner: its name without a delay queue's, the DLQ's or the backfill status queue's suffix
# (the suffixes of ``naming.owned_queue_pattern``, which the unit tests hold this to).
_OWNER = re.compile(r"^(?P<main>.+?)(\.retry\.[0-9]+ms|\.dlq|\.@backfill-status)?$")


def owner_of(queue: str) -> str:
    """The main queue ``queue`` belongs to (itself for a main queue)."""
    found = _OWNER.match(queue)
    return found.group("main") if found else queue


@dataclass(frozen=True)
class BrokerSnapshot:
    """One vhost's exchanges, queues, queue bindings and policies, as listed at one moment."""

    exchanges: Mapping[str, ObservedExchange]
    queues: Iterable[ObservedQueue]
    bindings: Iterable[Binding]
    policies: Mapping[str, Policy] = field(default_factory=dict)
    _queues_by_owner: dict[str, dict[str, ObservedQueue]] = field(init=False, repr=False, compare=False)
    _queues_by_name: dict[str, ObservedQueue] = field(init=False, repr=False, compare=False)
    _bindings_by_queue: dict[str, set[Binding]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_owner: dict[str, dict[str, ObservedQueue]] = defaultdict(dict)
        by_name: dict[str, ObservedQueue] = {}
        for queue in self.queues:
            by_owner[owner_of(queue.name)][queue.name] = queue
            by_name[queue.name] = queue
        by_queue: dict[str, set[Binding]] = defaultdict(set)
        for binding in self.bindings:
            by_queue[binding.queue].add(binding)
        object.__setattr__(self, "_queues_by_owner", dict(by_owner))
        object.__setattr__(self, "_queues_by_name", by_name)
        object.__setattr__(self, "_bindings_by_queue", dict(by_queue))

    def observed_for(
        self, exchange: str, main_queue: str, *, shared: Collection[str] = (), exchanges: Collection[str] = ()
    ) -> Observed:
        """What ``Broker.observe(exchange, main_queue, shared=shared, exchanges=exchanges)`` would have
        answered at the time of the listing."""
        queues = dict(self._queues_by_owner.get(main_queue, {}))
        queues |= {name: self._queues_by_name[name] for name in shared if name in self._queues_by_name}
        bindings = frozenset(b for name in queues for b in self._bindings_by_queue.get(name, ()))
        # As ``observe``: only the policy named after the main queue is the subscription's.
        policies = {main_queue: self.policies[main_queue]} if main_queue in self.policies else {}
        return Observed(
            exchange=self.exchanges.get(exchange),
            queues=queues,
            bindings=bindings,
            exchanges={name: self.exchanges[name] for name in exchanges if name in self.exchanges},
            policies=policies,
        )
