"""The real broker: observation and service users over the management API, topology changes over AMQP."""

from __future__ import annotations

from collections.abc import Collection

from rabbitsync.amqp.admin import BrokerAdmin
from rabbitsync.amqp.claim import ClusterClaim
from rabbitsync.amqp.connections import Connections
from rabbitsync.amqp.identity import BrokerUser
from rabbitsync.amqp.management import ManagementClient
from rabbitsync.amqp.port import ApplyOutcome
from rabbitsync.amqp.shared import RecentShared
from rabbitsync.amqp.snapshot import BrokerSnapshot
from rabbitsync.amqp.unroutable import keep_unroutable
from rabbitsync.amqp.users import RecentUsers
from rabbitsync.topology.diff import Plan
from rabbitsync.topology.model import Observed
from rabbitsync.topology.unroutable import UnroutableTopology
from rabbitsync.transport import BrokerEndpoint, Timeouts


class RabbitBroker:
    """``Broker`` for one RabbitMQ endpoint. Cheap to build: connects only inside ``apply``/``observe``,
    on a connection from ``connections`` (the operator's pool; a connection per plan without one).
    ``users``: what the process put lately (the operator's), so an identical user is not put again.
    ``shared``: the cluster's shared objects as the process observed them lately (the operator's), so
    each observation of a subscription does not look at them again."""

    def __init__(
        self,
        endpoint: BrokerEndpoint,
        timeouts: Timeouts | None = None,
        connections: Connections | None = None,
        users: RecentUsers | None = None,
        shared: RecentShared | None = None,
    ) -> None:
        self._management = ManagementClient(endpoint, timeouts)
        self._admin = BrokerAdmin(endpoint, timeouts, connections)
        self._users = users
        self._shared = shared
        self._key = f"{endpoint.management().base_url}/{endpoint.vhost}"

    def observe(
        self,
        exchange: str,
        main_queue: str,
        queues: Collection[str] | None = None,
        *,
        shared: Collection[str] = (),
        exchanges: Collection[str] = (),
    ) -> Observed:
        if self._shared is None:
            return self._management.observe(exchange, main_queue, queues, shared=shared, exchanges=exchanges)
        return self._shared.observe(
            self._key, self._management.observe, exchange, main_queue, queues, shared=shared, exchanges=exchanges
        )

    def snapshot(self) -> BrokerSnapshot:
        if self._shared is not None:
            self._shared.forget(self._key)
        return self._management.snapshot()

    def apply(self, plan: Plan) -> ApplyOutcome:
        if self._shared is not None:
            # Before, not after: a plan that fails half-way may have changed them too.
            self._shared.applied(self._key, plan)
        outcome = self._admin.apply(plan)
        # After the queues: a policy on a queue declared just now takes effect at once.
        for policy in plan.put_policies:
            self._management.put_policy(policy)
        for name in plan.delete_policies:
            self._management.delete_policy(name)
        return outcome

    def consumers(self, queue: str) -> int | None:
        return self._admin.consumers(queue)

    def put_user(self, user: BrokerUser) -> None:
        if self._users is None:
            self._management.put_user(user)
            return
        if self._users.current(self._key, user):
            return
        self._users.forget(self._key, user.username)
        self._management.put_user(user)
        self._users.put(self._key, user)

    def delete_user(self, username: str) -> bool:
        if self._users is not None:
            self._users.forget(self._key, username)
        return self._management.delete_user(username)

    def keep_unroutable(self, spec: UnroutableTopology) -> str:
        return keep_unroutable(self._admin, self._management, spec)

    def claim_cluster(self, claim: ClusterClaim) -> ClusterClaim:
        return self._management.claim_cluster(claim)
