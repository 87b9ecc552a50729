"""Broker I/O behind a small interface: observe a subscription's topology, apply a plan, sync both.

Pika and HTTP errors never leave this package: callers see ``rabbitsync.transport.errors`` only. Nothing
connects at import; ``RabbitBroker`` connects per call.
"""

from rabbitsync.amqp.endpoint import BrokerEndpoint, Timeouts
from rabbitsync.transport.errors import (
    AccessRefused,
    BrokerError,
    BrokerUnreachable,
    InvalidEndpoint,
    NotFound,
    PreconditionFailed,
)
from rabbitsync.amqp.fake import FakeBroker
from rabbitsync.amqp.port import ApplyOutcome, Broker
from rabbitsync.amqp.rabbit import RabbitBroker
from rabbitsync.amqp.sync import SyncResult, delete_topology, observe_and_sync

__all__ = [
    "AccessRefused",
    "ApplyOutcome",
    "Broker",
    "BrokerEndpoint",
    "BrokerError",
    "BrokerUnreachable",
    "FakeBroker",
    "InvalidEndpoint",
    "NotFound",
    "PreconditionFailed",
    "RabbitBroker",
    "SyncResult",
    "Timeouts",
    "delete_topology",
    "observe_and_sync",
]
