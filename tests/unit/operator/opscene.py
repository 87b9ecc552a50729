"""A cluster and a broker in memory for the operator's unit tests: the fake port and ``FakeBroker``.

``Scene.ready()`` is the usual starting point: a SyncBroker ``default`` with its Secret, a Deployment
``orders`` with one app container, nothing subscribed yet. Tests then break one thing at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rabbitsync.amqp import BrokerUser, FakeBroker
from rabbitsync.amqp.claim import ClusterClaim
from rabbitsync.amqp.port import ApplyOutcome, Broker
from rabbitsync.amqp.snapshot import BrokerSnapshot
from rabbitsync.operator.brokers import reconcile_broker
from rabbitsync.operator.cleanup import cleanup
from rabbitsync.operator.kube.fake import FakeCluster
from rabbitsync.operator.outcome import CleanupOutcome, ObjectView, ReconcileOutcome
from rabbitsync.operator.publication import Publication, cleanup_publication, reconcile_publication
from rabbitsync.operator.reconcile import reconcile
from rabbitsync.operator.references import ResolvedBroker
from rabbitsync.operator.settings import OperatorSettings
from rabbitsync.operator.subscription import Subscription
from rabbitsync.topology.diff import Plan
from rabbitsync.topology.model import Observed
from rabbitsync.topology.unroutable import UnroutableTopology

NS = "shop"
SETTINGS = OperatorSettings(cluster="east", delete_give_up_attempts=3)
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
URI = "amqp://guest:guest@broker.example:5672/"
APP = {"name": "app", "image": "shop/orders:1", "env": [{"name": "DJANGO_SETTINGS_MODULE", "value": "shop.settings"}]}


@dataclass
class FailingBroker:
    """A broker whose every call raises ``error`` (the fake broker cannot refuse credentials)."""

    error: Exception

    def observe(
        self,
        exchange: str,
        main_queue: str,
        queues: Collection[str] | None = None,
        *,
        shared: Collection[str] = (),
        exchanges: Collection[str] = (),
    ) -> Observed:
        raise self.error

    def snapshot(self) -> BrokerSnapshot:
        raise self.error

    def apply(self, plan: Plan) -> ApplyOutcome:
        raise self.error

    def consumers(self, queue: str) -> int | None:
        raise self.error

    def put_user(self, user: BrokerUser) -> None:
        raise self.error

    def delete_user(self, username: str) -> bool:
        raise self.error

    def keep_unroutable(self, spec: UnroutableTopology) -> str:
        raise self.error

    def claim_cluster(self, claim: ClusterClaim) -> ClusterClaim:
        raise self.error


@dataclass
class Scene:
    kube: FakeCluster = field(default_factory=FakeCluster)
    broker: FakeBroker = field(default_factory=FakeBroker)
    broker_error: Exception | None = None
    """Raised by every broker call (``FailingBroker``)."""
    factory_error: Exception | None = None
    """Raised when the broker client is built (e.g. a CA bundle the transport cannot load)."""
    resolved: list[ResolvedBroker] = field(default_factory=list)

    @classmethod
    def ready(cls) -> Scene:
        scene = cls()
        scene.kube.add_secret(NS, "rabbitmq", uri=URI)
        scene.kube.add_sync_broker(NS, "default", {"secretRef": {"name": "rabbitmq"}})
        scene.kube.add_deployment(NS, "orders", [APP])
        # The service's pods run: its sidecar consumes every queue as soon as it exists.
        scene.broker.consumers_on_declare = 1
        return scene

    def brokers(self, resolved: ResolvedBroker) -> Broker:
        self.resolved.append(resolved)
        if self.factory_error is not None:
            raise self.factory_error
        return FailingBroker(self.broker_error) if self.broker_error is not None else self.broker

    def subscribe(
        self, name: str = "orders", *, status: Mapping[str, Any] | None = None, generation: int = 1, **spec: Any
    ) -> Subscription:
        """A SyncSubscription as its handler sees it, also present in the cluster (as the index has it)."""
        raw = {"service": "orders", "events": ["order.created"], **spec}
        self.kube.add_subscription(NS, name, raw)
        return Subscription(NS, name, generation, status or {}, raw)

    def reconcile(self, sub: Subscription) -> ReconcileOutcome:
        return reconcile(sub, self.kube, self.brokers, SETTINGS, now=NOW)

    def again(self, sub: Subscription, outcome: ReconcileOutcome) -> ReconcileOutcome:
        """The next reconcile of ``sub``, with the status the last one wrote."""
        return self.reconcile(dataclasses.replace(sub, status=outcome.status))

    def delete(self, sub: Subscription, attempt: int = 0) -> CleanupOutcome:
        """Cleanup as kopf calls it: the subscription is being deleted, so no longer live."""
        self.kube.subscriptions[NS, sub.name].deleting = True
        return cleanup(sub, self.kube, self.brokers, SETTINGS, attempt)

    def publish(
        self, name: str = "orders-out", *, status: Mapping[str, Any] | None = None, generation: int = 1, **spec: Any
    ) -> Publication:
        """A SyncPublication as its handler sees it, also present in the cluster (as the index has it)."""
        raw = {"service": "orders", "events": ["ORDER_CREATED"], **spec}
        self.kube.add_publication(NS, name, raw)
        return Publication(NS, name, generation, status or {}, raw)

    def reconcile_publication(self, pub: Publication) -> ReconcileOutcome:
        return reconcile_publication(pub, self.kube, self.brokers, SETTINGS, now=NOW)

    def delete_publication(self, pub: Publication, attempt: int = 0) -> CleanupOutcome:
        self.kube.publications[NS, pub.name].deleting = True
        return cleanup_publication(pub, self.kube, self.brokers, SETTINGS, attempt)

    def reconcile_broker(self, name: str = "default", status: Mapping[str, Any] | None = None) -> ReconcileOutcome:
        return reconcile_broker(ObjectView(NS, name, 1, status or {}), self.kube, self.brokers, now=NOW)


def condition(outcome: ReconcileOutcome, type_: str) -> tuple[str, str]:
    """(status, reason) of one condition in the outcome's status."""
    found = next(c for c in outcome.status["conditions"] if c["type"] == type_)
    return found["status"], found["reason"]


def message(outcome: ReconcileOutcome, type_: str) -> str:
    return str(next(c for c in outcome.status["conditions"] if c["type"] == type_)["message"])


def types(outcome: ReconcileOutcome) -> set[str]:
    return {c["type"] for c in outcome.status["conditions"]}


def reasons(notes: list[Any]) -> list[str]:
    return [n.reason for n in notes]
