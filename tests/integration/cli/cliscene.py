"""One test's scene for the CLI's integration tests: resources in real clusters, queues on the real broker.

The operator's part is played here, the way the operator plays it: the topology is declared with
``desired_topology`` + ``observe_and_sync`` (the operator's own functions) and the status is written
through the status subresource with the names the operator writes. That keeps these tests about the
CLI, and keeps them from racing the operator fleet of ``tests/integration/operator`` (which watches
every namespace while its session lasts).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from kubernetes import client

from rabbitsync.amqp import BrokerEndpoint, RabbitBroker, observe_and_sync
from rabbitsync.api import SyncSubscriptionSpec
from rabbitsync.topology import naming
from rabbitsync.topology.desired import desired_topology

GROUP, VERSION = "rabbitsync.io", "v1alpha1"


class Scene:
    def __init__(self, clusters: dict[str, Any], broker: Any, namespace: str, uid: str) -> None:
        self.clusters, self.broker, self.namespace = clusters, broker, namespace
        self.exchange = f"rabbitsync.cli-test.{uid}"
        self.queues: list[str] = []
        self.cluster_brokers: list[tuple[str, str]] = []

    def custom(self, cluster: str) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.clusters[cluster].api)

    def setup_broker(self, cluster: str) -> None:
        self._admin_secret(cluster)
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SyncBroker",
            "metadata": {"name": "default"},
            "spec": {"secretRef": {"name": "rabbitmq"}, "exchange": self.exchange},
        }
        self.custom(cluster).create_namespaced_custom_object(GROUP, VERSION, self.namespace, "syncbrokers", body)

    def setup_cluster_broker(self, cluster: str, name: str) -> None:
        """A ClusterSyncBroker, its Secret in this test's namespace (the CLI is told that is the operator's)."""
        self._admin_secret(cluster)
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ClusterSyncBroker",
            "metadata": {"name": name},
            "spec": {
                "secretRef": {"name": "rabbitmq"},
                "exchange": self.exchange,
                "allowedNamespaces": [self.namespace],
            },
        }
        self.custom(cluster).create_cluster_custom_object(GROUP, VERSION, "clustersyncbrokers", body)
        self.cluster_brokers.append((cluster, name))

    def _admin_secret(self, cluster: str) -> None:
        self.clusters[cluster].core.create_namespaced_secret(
            self.namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="rabbitmq"),
                string_data={"uri": self.broker.amqp_url, "managementUri": self.broker.management_url},
            ),
        )

    def subscribe(
        self, cluster: str, name: str, events: list[str], *, reconcile: bool = True, **spec: Any
    ) -> dict[str, Any]:
        """Create a SyncSubscription; with ``reconcile``, declare its queues and write its status."""
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SyncSubscription",
            "metadata": {"name": name},
            "spec": {"service": name, "events": events, **spec},
        }
        custom = self.custom(cluster)
        created = custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "syncsubscriptions", body)
        if not reconcile:
            return created  # type: ignore[no-any-return]
        parsed = SyncSubscriptionSpec.model_validate(created["spec"])
        topology = desired_topology(
            cluster=cluster, namespace=self.namespace, subscription=name, spec=parsed, exchange=self.exchange
        )
        observe_and_sync(RabbitBroker(BrokerEndpoint(self.broker.amqp_url, self.broker.management_url)), topology)
        main = naming.queue_name(cluster, self.namespace, name)
        self.queues += [q.name for q in topology.queues]
        status = {
            "queue": main,
            "deadLetterQueue": naming.dead_letter_queue_name(main),
            "retryQueues": [q.name for q in topology.retry_queues],
            "exchange": self.exchange,
            "queueDepth": 0,
            "consumers": 0,
            "deadLettered": 0,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "TopologyVerified",
                    "message": "",
                    "lastTransitionTime": "2026-11-30T00:00:00Z",
                },
                {
                    "type": "SidecarInjected",
                    "status": "False",
                    "reason": "DeploymentNotFound",
                    "message": "",
                    "lastTransitionTime": "2026-11-30T00:00:00Z",
                },
            ],
        }
        return custom.patch_namespaced_custom_object_status(  # type: ignore[no-any-return]
            GROUP, VERSION, self.namespace, "syncsubscriptions", name, {"status": status}
        )

    def cleanup(self) -> None:
        import pika

        for cluster, name in self.cluster_brokers:
            self.custom(cluster).delete_cluster_custom_object(GROUP, VERSION, "clustersyncbrokers", name)

        connection = pika.BlockingConnection(pika.URLParameters(self.broker.amqp_url))
        channel = connection.channel()
        for queue in self.queues:
            channel.queue_delete(queue)
        channel.exchange_delete(self.exchange)
        connection.close()


def rabbitsync(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a person runs it (``env``: added to this process's environment)."""
    exe = Path(sys.executable).parent / "rabbitsync"
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=120, input=stdin, env={**os.environ, **(env or {})}
    )
