"""The small interface between reconciliation and a broker: observe, apply a plan, manage service users.

``RabbitBroker`` implements it against RabbitMQ, ``FakeBroker`` in memory; ``sync`` only knows this
interface, so the whole observe-diff-apply-verify flow is unit-tested without a broker.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from rabbitsync.amqp.claim import ClusterClaim
from rabbitsync.amqp.identity import BrokerUser
from rabbitsync.amqp.snapshot import BrokerSnapshot
from rabbitsync.topology.diff import Plan
from rabbitsync.topology.model import Observed
from rabbitsync.topology.unroutable import UnroutableTopology


@dataclass(frozen=True)
class ApplyOutcome:
    """What the broker declined without it being an error."""

    kept_not_empty: tuple[str, ...] = ()
    """Obsolete delay queues left in place because they still hold messages; retried next time."""


class Broker(Protocol):
    def observe(
        self,
        exchange: str,
        main_queue: str,
        queues: Collection[str] | None = None,
        *,
        shared: Collection[str] = (),
        exchanges: Collection[str] = (),
    ) -> Observed:
        """The exchange, the queues named after ``main_queue``, and every binding to those queues.

        ``queues``: look only at these queues, by name, instead of finding every queue named after
        ``main_queue``. Finding them lists the whole vhost's queues (the management API filters after
        listing), whose cost grows with every subscription on the broker; by name costs the same at any size.
        ``shared``: queues no subscription owns (:mod:`rabbitsync.topology.delays`), which the pattern of
        ``main_queue``'s never finds: looked up by name as well, with or without ``queues``, and so are
        the bindings to them. ``exchanges``: other exchanges, looked up by name, into
        ``Observed.exchanges``; a missing one is absent from it.

        Raises a ``rabbitsync.transport.errors.BrokerError``.
        """
        ...

    def snapshot(self) -> BrokerSnapshot:
        """Every exchange, queue and queue binding of the vhost, for the drift sweep. Raises a ``BrokerError``."""
        ...

    def apply(self, plan: Plan) -> ApplyOutcome:
        """Carry out ``plan`` in order. Raises a ``rabbitsync.transport.errors.BrokerError``."""
        ...

    def consumers(self, queue: str) -> int | None:
        """Consumers on ``queue`` as the queue counts them now (``observe``'s counts are the management
        API's statistics, collected every few seconds and later under load); None if it does not exist.
        Raises a ``rabbitsync.transport.errors.BrokerError``."""
        ...

    def put_user(self, user: BrokerUser) -> None:
        """Create or update a service's user: password, permissions, topic permissions, limits.

        Raises a ``BrokerError`` whose message never contains the password.
        """
        ...

    def delete_user(self, username: str) -> bool:
        """Delete a service's user; False if it did not exist. Raises a ``BrokerError``."""
        ...

    def keep_unroutable(self, spec: UnroutableTopology) -> str:
        """Put in place the alternate exchange, queue and policy of ``spec`` (idempotent); what is in
        effect, as a sentence for the broker's status. Raises a ``BrokerError``."""

    def claim_cluster(self, claim: ClusterClaim) -> ClusterClaim:
        """Record ``claim`` unless the broker holds one for its cluster name and vhost already; return the
        claim in force (``claim`` itself, or another install's). Raises a ``BrokerError``."""
