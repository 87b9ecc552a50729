"""Whether a delay queue the retry schedule dropped may be deleted: no pod of the service still uses it.

A sidecar publishes a failed delivery into the delay queue of its *own* schedule, read from its
environment when its pod started. After a schedule change the old pods keep publishing into the old
delay queues until the Deployment has rolled onto the new sidecar; a queue deleted before that would
make those retries unroutable. So an obsolete delay queue is retired only once the Deployment's pod
template carries a sidecar whose schedule for this subscription no longer has that delay (or no
sidecar at all), *and* its rollout is complete: the controller has seen the template and no pod of an
older ReplicaSet remains. No Deployment means no publisher. Pure apart from one Deployment read.

The same gate migrates a subscription off the per-subscription delay queues of older releases: their
contract has no ``retryExchanges``, so it names those queues (``ConsumerSpec.retry_queue``), and they
stay until every pod runs a contract that publishes into the cluster's shared ones.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rabbitsync.operator import sidecar_spec
from rabbitsync.operator.kube import Cluster, KubeError, NotFound
from rabbitsync.topology.model import Topology
from rabbitsync.topology.sidecar_contract import SidecarConfig, env_name

_SUBSCRIPTIONS = env_name("subscriptions")


def delay_queues_retirable(
    cluster: Cluster, namespace: str, service: str, subscription: str, topology: Topology
) -> bool:
    """No pod of ``service`` can still publish into a delay queue ``topology`` does not have."""
    try:
        deployment = cluster.deployment(namespace, service)
    except NotFound:
        return True
    except KubeError:
        # Unknown is not safe: keep the queues until the next reconcile can tell.
        return False
    wanted = {q.name for q in topology.retry_queues}
    return (
        rolled_out(deployment)
        and {q for q in _delay_queues(deployment, subscription, topology.main_queue.name)} <= wanted
    )


def rolled_out(deployment: Mapping[str, Any]) -> bool:
    """The Deployment controller has acted on the current template and every pod runs it."""
    status = deployment.get("status") or {}
    generation = int(deployment["metadata"].get("generation") or 0)
    return (
        int(status.get("observedGeneration") or 0) >= generation
        and int(status.get("updatedReplicas") or 0) == int(status.get("replicas") or 0)
        # Reported since Kubernetes 1.33 where enabled: old pods still shutting down may still publish.
        and not status.get("terminatingReplicas")
    )


def _delay_queues(deployment: Mapping[str, Any], subscription: str, main_queue: str) -> list[str]:
    """The delay queues the template's sidecar publishes ``subscription``'s retries into."""
    sidecar = sidecar_spec.injected(deployment)
    if sidecar is None:
        return []
    raw = next((e.get("value") for e in sidecar.get("env", []) if e.get("name") == _SUBSCRIPTIONS), None)
    if not raw:
        return []
    try:
        consumers = SidecarConfig(subscriptions=json.loads(raw)).subscriptions
    except ValueError:
        # A sidecar we cannot read could publish anywhere: keep everything.
        return [main_queue + ".retry.unknown"]
    return [
        spec.retry_queue(attempt)
        for spec in consumers
        if spec.subscription == subscription
        for attempt in range(1, len(spec.retry_delays_ms) + 1)
    ]
