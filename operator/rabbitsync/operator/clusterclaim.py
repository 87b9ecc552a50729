"""This operator's claim on its cluster name, checked on every broker it reconciles.

Turns what the broker says (``amqp.claim``) into conditions for the SyncBroker: ``ClusterNameClaimed``
True when the name is this install's, else False with ``Ready=False``, both with reason
``ClusterNameConflict`` and the other install named (a Warning Event comes with the transition),
and an error in the log. The claim is never
taken over: which of two clusters is misnamed is a human decision (see the README's "Installing").
"""

from __future__ import annotations

import logging

from rabbitsync.amqp.claim import ClusterClaim
from rabbitsync.amqp.port import Broker
from rabbitsync.api.conditions import READY
from rabbitsync.operator import status as st

log = logging.getLogger(__name__)

CLUSTER_NAME_CLAIMED = "ClusterNameClaimed"
CONFLICT = "ClusterNameConflict"


def check_claim(broker: Broker, cluster: str, install_id: str, vhost: str) -> st.Observation:
    """Claim ``cluster`` on ``vhost`` for ``install_id``; the condition saying whether it is ours.

    Raises a ``BrokerError`` (the broker reconcile turns it into conditions like any other)."""
    ours = ClusterClaim(cluster=cluster, vhost=vhost, install_id=install_id)
    held = broker.claim_cluster(ours)
    if held.install_id == install_id:
        return st.Observation(CLUSTER_NAME_CLAIMED, "True", "Claimed", f"cluster name {cluster!r} is this install's")
    message = (
        f"cluster name {cluster!r} on vhost {vhost!r} is claimed by another install ({held.install_id}), this is "
        f"{install_id}: two clusters with one name would share queues; give this one its own RABBITSYNC_CLUSTER, "
        f"or clear the stale claim (rabbitmqctl clear_global_parameter {ours.parameter_name})"
    )
    log.error("%s", message)
    return st.Observation(CLUSTER_NAME_CLAIMED, "False", CONFLICT, message)


def ready(claim: st.Observation | None, ready_message: str) -> st.Observation:
    """``Ready`` of a broker whose exchange is in place: False while the cluster name is not ours."""
    if claim is not None and claim.status != "True":
        return st.Observation(READY, "False", claim.reason, claim.message)
    return st.Observation(READY, "True", "ExchangeReady", ready_message)
