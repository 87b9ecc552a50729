"""The real broker: observation and service users over the management API, topology changes over AMQP."""

from __future__ import annotations

from collections.abc import Collection

from rabbitsync.amqp.admin import BrokerAdmin
from rabbitsync.amqp.claim import ClusterClaim
from rabbitsync.amqp.connections import Connections
from rabbitsync.amqp.identity import BrokerUser
from rabbitsync.amqp.management import ManagementClient
from rabbitsync.amqp.port import ApplyOutcome
from rabbitsync.amqp.snapshot import BrokerSnapshot
from rabbitsync.amqp.unroutable import keep_unroutable
from rabbitsync.topology.diff import Plan
from rabbitsync.topology.model import Observed
from rabbitsync.topology.unroutable import UnroutableTopology
from rabbitsync.transport import BrokerEndpoint, Timeouts


class RabbitBroker:
    """``Broker`` for one RabbitMQ endpoint. Cheap to build: connects only inside ``apply``/``observe``,
    on a connection from ``connections`` (the operator's pool; a connection per plan without one)."""

    def __init__(
        self, endpoint: BrokerEndpoint, timeouts: Timeouts | None = None, connections: Connections | None = None
    ) -> None:
        self._management = ManagementClient(endpoint, timeouts)
        self._admin = BrokerAdmin(endpoint, timeouts, connections)

    def observe(self, exchange: str, main_queue: str, queues: Collection[str] | None = None) -> Observed:
        return self._management.observe(exchange, main_queue, queues)

    def snapshot(self) -> BrokerSnapshot:
        return self._management.snapshot()

    def apply(self, plan: Plan) -> ApplyOutcome:
        outcome = self._admin.apply(plan)
        # After the queues: a policy on a queue declared just now takes effect at once.
        for policy in plan.put_policies:
            self._management.put_policy(policy)
        for name in plan.delete_policies:
            self._management.delete_policy(name)
        return outcome

    def put_user(self, user: BrokerUser) -> None:
        self._management.put_user(user)

    def delete_user(self, username: str) -> bool:
        return self._management.delete_user(username)

    def keep_unroutable(self, spec: UnroutableTopology) -> str:
        return keep_unroutable(self._admin, self._management, spec)

    def claim_cluster(self, claim: ClusterClaim) -> ClusterClaim:
        return self._management.claim_cluster(claim)
