"""Puts the unroutable-event net in place on a real broker (see :mod:`rabbitsync.topology.unroutable`).

The alternate exchange and its queue are declared over AMQP *before* the policy is set over the
management API, so the policy never points the shared exchange at an exchange that does not exist
yet (RabbitMQ would then drop what it cannot route, as if there were no policy). Every step is
idempotent, so the two clusters' operators, and every resync, may run it as often as they like.
"""

from __future__ import annotations

from rabbitsync.amqp.admin import BrokerAdmin
from rabbitsync.amqp.management import ManagementClient
from rabbitsync.topology.unroutable import ALTERNATE_EXCHANGE_TYPE, UnroutableTopology
from rabbitsync.transport import Declarations


def keep_unroutable(admin: BrokerAdmin, management: ManagementClient, spec: UnroutableTopology) -> str:
    """Declare the alternate exchange and queue, bind them (on the admin's connection: the operator's
    kept one), apply the policy; what is in effect, as a sentence.

    Raises ``BrokerError`` subclasses.
    """
    admin.run(lambda broker: _declare(broker, spec))
    management.put_policy(spec.as_policy())
    return in_effect(spec, management.exchange_policy(spec.exchange))


def _declare(broker: Declarations, spec: UnroutableTopology) -> None:
    broker.exchange_declare(spec.alternate_exchange, exchange_type=ALTERNATE_EXCHANGE_TYPE, durable=True)
    broker.queue_declare(spec.queue, durable=True, arguments=dict(spec.queue_arguments))
    broker.queue_bind(spec.queue, spec.alternate_exchange, routing_key="")


def in_effect(spec: UnroutableTopology, policy: str | None) -> str:
    """The sentence the SyncBroker's status shows for the policy found on the exchange."""
    if policy == spec.policy:
        return f"unroutable events kept in queue {spec.queue}"
    return (
        f"exchange {spec.exchange} is governed by policy {policy or '(none yet)'}, not {spec.policy}: "
        "unroutable events stay in the publishers' outboxes until it is"
    )
