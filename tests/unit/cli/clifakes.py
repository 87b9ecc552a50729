"""A cluster and a broker in memory for the CLI's unit tests (the port is ``rabbitsync.cli.kube.Cluster``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rabbitsync.cli.failures import CliError
from rabbitsync.cli.resources import PUBLICATION, SUBSCRIPTION, Resource, parse
from rabbitsync.transport import BrokerEndpoint, IncomingMessage, OutgoingMessage, PublishRejected


def obj(namespace: str, name: str, service: str, events: Sequence[str], **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"service": service, "events": list(events)},
        "status": status,
    }


def ready(status: str = "True", reason: str = "TopologyVerified") -> dict[str, Any]:
    return {"conditions": [{"type": "Ready", "status": status, "reason": reason}]}


class FakeCluster:
    def __init__(
        self,
        label: str,
        subscriptions: Sequence[dict[str, Any]] = (),
        publications: Any = None,
        brokers: Mapping[tuple[str, str], BrokerEndpoint | CliError] | None = None,
    ) -> None:
        """``brokers``: (namespace, name), "" for a ClusterSyncBroker, to its endpoint or the error reading it."""
        self.label = label
        self._brokers = dict(brokers or {})
        self.annotated: list[tuple[str, str, dict[str, str]]] = []
        self._objects = {
            SUBSCRIPTION: [parse(SUBSCRIPTION, label, o) for o in subscriptions],
            PUBLICATION: None if publications is None else [parse(PUBLICATION, label, o) for o in publications],
        }

    def resources(self, kind: str) -> list[Resource] | None:
        return self._objects[kind]

    def subscription(self, namespace: str, name: str) -> Resource | None:
        found = [r for r in self._objects[SUBSCRIPTION] or [] if (r.namespace, r.name) == (namespace, name)]
        return found[0] if found else None

    def brokers(self) -> list[tuple[str, str]]:
        return list(self._brokers)

    def broker_endpoint(self, namespace: str, broker: str) -> BrokerEndpoint:
        found = self._brokers.get((namespace, broker), BrokerEndpoint("amqp://guest:guest@broker.invalid/"))
        if isinstance(found, CliError):
            raise found
        return found

    def service_endpoint(self, namespace: str, service: str) -> BrokerEndpoint | None:
        return None

    def annotate_subscription(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        found = self.subscription(namespace, name)
        assert found is not None
        self.annotated.append((namespace, name, annotations))


class Done:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def wait(self, timeout: float) -> None:
        if self.error is not None:
            raise self.error


@dataclass
class FakeQueues:
    """Queues as lists; get hands out messages unacked, ack removes them, publish appends copies."""

    queues: dict[str, list[IncomingMessage]] = field(default_factory=dict)
    unacked: dict[int, IncomingMessage] = field(default_factory=dict)
    returned: int = 0
    next_tag: int = 1000
    user: str | None = None
    """The user it speaks as: the broker stamps it as ``user_id`` on every copy published."""

    def get(self, queue: str) -> IncomingMessage | None:
        if not self.queues.get(queue):
            return None
        message = self.queues[queue].pop(0)
        self.next_tag += 1
        taken = IncomingMessage(
            tag=self.next_tag,
            body=message.body,
            headers=message.headers,
            message_id=message.message_id,
            type=message.type,
            timestamp=message.timestamp,
            content_type=message.content_type,
            user_id=message.user_id,
        )
        self.unacked[taken.tag] = taken
        return taken

    def ack(self, tag: int) -> None:
        del self.unacked[tag]

    def submit(self, messages: Sequence[OutgoingMessage]) -> Done:
        for m in messages:
            if m.routing_key not in self.queues:
                return Done(PublishRejected(f"unroutable: no queue {m.routing_key!r}"))
            self.next_tag += 1
            self.queues[m.routing_key].append(
                IncomingMessage(
                    tag=0,
                    body=m.body,
                    headers=dict(m.headers or {}),
                    message_id=m.properties.message_id,
                    type=m.properties.type,
                    timestamp=m.properties.timestamp,
                    user_id=self.user,
                )
            )
        return Done()
