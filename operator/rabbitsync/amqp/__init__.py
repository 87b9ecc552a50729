"""Broker I/O behind a small interface: observe a subscription's topology, apply a plan, sync both.

Connections, TLS and errors come from ``rabbitsync.transport``, re-exported here for the operator:
pika and HTTP errors never leave this package, callers see ``rabbitsync.transport.errors`` only.
Nothing connects at import; ``RabbitBroker`` connects on use, through a ``ConnectionPool`` in the operator.
"""

from rabbitsync.amqp.claim import ClusterClaim
from rabbitsync.amqp.connections import ConnectionPool, Connections, OneShot
from rabbitsync.amqp.fake import FakeBroker
from rabbitsync.amqp.identity import BrokerUser, Permissions, TopicPermissions, UserLimits, rights_for
from rabbitsync.amqp.port import ApplyOutcome, Broker
from rabbitsync.amqp.rabbit import RabbitBroker
from rabbitsync.amqp.sync import SyncResult, delete_topology, observe_and_sync
from rabbitsync.transport import (
    AccessRefused,
    BrokerEndpoint,
    BrokerError,
    BrokerUnreachable,
    InvalidEndpoint,
    NotFound,
    PreconditionFailed,
    Timeouts,
)

__all__ = [
    "AccessRefused",
    "ApplyOutcome",
    "Broker",
    "BrokerEndpoint",
    "BrokerError",
    "BrokerUnreachable",
    "BrokerUser",
    "ClusterClaim",
    "ConnectionPool",
    "Connections",
    "FakeBroker",
    "InvalidEndpoint",
    "NotFound",
    "OneShot",
    "Permissions",
    "PreconditionFailed",
    "RabbitBroker",
    "SyncResult",
    "Timeouts",
    "TopicPermissions",
    "UserLimits",
    "delete_topology",
    "observe_and_sync",
    "rights_for",
]
