"""Orphan collection: queues named for this cluster that no SyncSubscription owns are reported, then removed.

Queues are left behind when a cleanup gave up (a broker away for longer than the deletion budget) or
could not even start (a namespace deleted with its SyncBroker and Secret). They stay bound and collect
every event of their types until a broker alarm blocks the publishers of every service, so each
broker's resync looks for them: every queue named ``rabbitsync.<this cluster>.<namespace>.<name>...``
in a namespace this operator watches, whose SyncSubscription does not exist (the queues the cluster's
subscriptions share, ``naming.shared_by_cluster``, are no one's orphans). Each is reported at once
(a Warning Event, a log line, the broker's ``OrphanedQueues`` condition) and removed, with its
delivery-limit policy, once it has been an orphan for ``RABBITSYNC_ORPHAN_GRACE_SECONDS`` (an hour by
default: far longer than any cleanup, so a subscription being deleted is never raced). The grace is
counted by this operator process: a restart starts it again, which errs on the side of keeping.

``deletionPolicy: retain`` keeps a queue on purpose: its cleanup leaves a marker policy
``rabbitsync-retained:<queue>`` (with the same delivery limit), which the collector respects; deleting
that policy hands the queue to the collector.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from rabbitsync.amqp.port import Broker
from rabbitsync.amqp.snapshot import BrokerSnapshot
from rabbitsync.topology import naming
from rabbitsync.topology.delivery_limit import delivery_limit, delivery_limit_policy
from rabbitsync.topology.diff import Plan, QueueDeletion
from rabbitsync.topology.model import Policy

log = logging.getLogger(__name__)

RETAINED_PREFIX = "rabbitsync-retained:"


def retained_marker(main_queue: str, max_attempts: int) -> Policy:
    """The policy that marks ``main_queue`` (and its delay queues and DLQ) as retained on purpose."""
    limit = delivery_limit_policy(main_queue, delivery_limit(max_attempts))
    return Policy(
        name=RETAINED_PREFIX + main_queue,
        pattern=naming.owned_queue_pattern(main_queue),
        definition=limit.definition,
        priority=limit.priority,
    )


@dataclass(frozen=True)
class Sweep:
    """One collection on one broker."""

    orphans: tuple[str, ...]
    """Every orphaned queue found, removed or not yet."""
    new: tuple[str, ...]
    """Orphans seen for the first time now."""
    removed: tuple[str, ...]


@dataclass
class OrphanCollector:
    cluster: str
    namespaces: tuple[str, ...]
    """Watched namespaces; empty: all."""
    grace_seconds: float
    first_seen: dict[str, float] = field(default_factory=dict)
    """Orphan -> monotonic time first seen, keyed by broker and queue."""

    def sweep(
        self, listing: BrokerSnapshot, broker: Broker, where: str, owned: Iterable[tuple[str, str]], now: float
    ) -> Sweep:
        """Find the orphans in ``listing`` of ``broker`` (``where`` names it) and remove those past the grace.

        The listing is the drift sweep's, taken just before: finding orphans costs no broker call, and
        only a removal does. Raises ``BrokerError``."""
        prefix = f"{naming.PREFIX}.{self.cluster}."
        owned_mains = {naming.queue_name(self.cluster, ns, name) for ns, name in owned}
        retained = {p.removeprefix(RETAINED_PREFIX) for p in listing.policies if p.startswith(RETAINED_PREFIX)}
        kept = owned_mains | retained
        orphans = []
        for queue in sorted(q.name for q in listing.queues if q.name.startswith(prefix)):
            # The owned are skipped before the name is matched: a pattern per subscription, compiled
            # anew past re's cache of 512, was 5 % of an idle operator's samples at 1,000 subscriptions.
            if _owner_candidate(queue, prefix) in kept or naming.shared_by_cluster(queue):
                continue
            main = _main_queue(queue, prefix)
            if main is None or not self._watched(main, prefix):
                continue
            orphans.append(queue)
        seen = {f"{where}/{q}" for q in orphans}
        # An orphan that came back (its subscription recreated) starts over.
        self.first_seen = {k: v for k, v in self.first_seen.items() if not k.startswith(f"{where}/") or k in seen}
        new = tuple(q for q in orphans if f"{where}/{q}" not in self.first_seen)
        for q in new:
            self.first_seen[f"{where}/{q}"] = now
            log.warning("orphaned queue %s on %s: no SyncSubscription owns it", q, where)
        due = tuple(q for q in orphans if now - self.first_seen[f"{where}/{q}"] >= self.grace_seconds)
        if due:
            mains = sorted({m for q in due if (m := _main_queue(q, prefix)) is not None})
            broker.apply(
                Plan(
                    delete_queues=tuple(QueueDeletion(q, if_empty=False) for q in due),
                    delete_policies=tuple(m for m in mains if m in listing.policies),
                )
            )
            for q in due:
                self.first_seen.pop(f"{where}/{q}", None)
                log.warning("removed orphaned queue %s on %s after %.0f s", q, where, self.grace_seconds)
        return Sweep(orphans=tuple(orphans), new=new, removed=due)

    def _watched(self, main: str, prefix: str) -> bool:
        return not self.namespaces or main.removeprefix(prefix).split(".")[0] in self.namespaces


def _owner_candidate(queue: str, prefix: str) -> str | None:
    """``rabbitsync.<cluster>.<ns>.<name>`` from the first two parts after the prefix, unchecked."""
    rest = queue.removeprefix(prefix).split(".")
    return prefix + ".".join(rest[:2]) if len(rest) >= 2 else None


def _main_queue(queue: str, prefix: str) -> str | None:
    """``rabbitsync.<cluster>.<ns>.<name>`` of one of its queues; None for a name we never make."""
    main = _owner_candidate(queue, prefix)
    return main if main is not None and re.fullmatch(naming.owned_queue_pattern(main), queue) else None
