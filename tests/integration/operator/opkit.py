"""Helpers of the operator tests: polling with deadlines, the management API, one test's objects (``Kit``)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.rest import ApiException

from harness import operators, processes
from harness.polling import eventually
from rabbitsync.conventions import backfill_binding_key, routing_key

GROUP, VERSION = "rabbitsync.io", "v1alpha1"
RESYNC_SECONDS = 3.0
DELETE_ATTEMPTS = 3
MAX_BACKOFF_SECONDS = 4.0
# How long a resync-driven change may take: two intervals plus the time a reconcile itself takes.
CONVERGE = 2 * RESYNC_SECONDS + 12

T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float, what: str, interval: float = 0.3) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` and the last value seen."""
    return eventually(check, timeout, what, interval=interval, tolerate=(ApiException, urllib.error.URLError, OSError))


class Management:
    """The broker's management HTTP API: what a person with the admin UI would see and do."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.base = f"{parts.scheme}://{parts.hostname}:{parts.port}"
        self.auth = base64.b64encode(f"{parts.username}:{parts.password}".encode()).decode()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Basic {self.auth}", "Content-Type": "application/json"}
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    @staticmethod
    def q(name: str) -> str:
        return urllib.parse.quote(name, safe="")

    def queues(self, prefix: str) -> dict[str, dict[str, Any]]:
        found = self.call("GET", "/api/queues/%2F?columns=name,arguments,durable,type")
        return {q["name"]: q for q in found if q["name"].startswith(prefix)}

    def bindings(self, exchange: str, queue: str) -> set[str]:
        path = f"/api/bindings/%2F/e/{self.q(exchange)}/q/{self.q(queue)}"
        return {b["routing_key"] for b in self.call("GET", path)}

    def delete_queue(self, queue: str) -> None:
        self.call("DELETE", f"/api/queues/%2F/{self.q(queue)}")

    def delete_binding(self, exchange: str, queue: str, routing_key: str) -> None:
        path = f"/api/bindings/%2F/e/{self.q(exchange)}/q/{self.q(queue)}"
        [found] = [b for b in self.call("GET", path) if b["routing_key"] == routing_key]
        self.call("DELETE", f"{path}/{self.q(found['properties_key'])}")

    def publish(self, exchange: str, routing_key: str, payload: str = "{}") -> None:
        body = {
            "properties": {"delivery_mode": 2},
            "routing_key": routing_key,
            "payload": payload,
            "payload_encoding": "string",
        }
        result = self.call("POST", f"/api/exchanges/%2F/{self.q(exchange)}/publish", body)
        assert result["routed"], f"nothing bound to {exchange} for {routing_key}"

    def declare_queue(self, queue: str, arguments: dict[str, Any]) -> None:
        self.call("PUT", f"/api/queues/%2F/{self.q(queue)}", {"durable": True, "arguments": arguments})

    def bind(self, exchange: str, queue: str, routing_key: str) -> None:
        self.call("POST", f"/api/bindings/%2F/e/{self.q(exchange)}/q/{self.q(queue)}", {"routing_key": routing_key})

    def delete_exchange(self, exchange: str) -> None:
        try:
            self.call("DELETE", f"/api/exchanges/%2F/{self.q(exchange)}")
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise


class Kit:
    """One test's objects in both clusters and on the broker; cleans up the broker side afterwards."""

    def __init__(self, clusters, broker, namespace: str, uid: str) -> None:  # type: ignore[no-untyped-def]
        self.clusters = clusters
        self.broker = broker
        self.namespace = namespace
        self.uid = uid
        self.exchange = f"rabbitsync.test.{uid}"
        self.mgmt = Management(broker.management_url)

    def custom(self, cluster: str) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.clusters[cluster].api)

    def core(self, cluster: str) -> client.CoreV1Api:
        return self.clusters[cluster].core

    def queue_name(self, cluster: str, subscription: str) -> str:
        return f"rabbitsync.{cluster}.{self.namespace}.{subscription}"

    # --- Kubernetes objects -------------------------------------------------------------------------

    def create_secret(self, cluster: str, name: str = "rabbitmq", uri: str | None = None, **extra: str) -> None:
        # The test broker's own management port: a private node (RABBITSYNC_BROKER_PRIVATE=1) is not on 15672.
        default = {"uri": self.broker.amqp_url, "managementUri": self.broker.management_url}
        data = {**({"uri": uri} if uri else default), **extra}
        self.core(cluster).create_namespaced_secret(
            self.namespace,
            client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data),
        )

    def create_syncbroker(self, cluster: str, name: str = "default", secret: str = "rabbitmq") -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SyncBroker",
            "metadata": {"name": name},
            "spec": {"secretRef": {"name": secret}, "exchange": self.exchange},
        }
        self.custom(cluster).create_namespaced_custom_object(GROUP, VERSION, self.namespace, "syncbrokers", body)

    def setup_broker(self, cluster: str, **secret: str) -> None:
        self.create_secret(cluster, **secret)
        self.create_syncbroker(cluster)

    @staticmethod
    def subscription_body(name: str, events: list[str], **spec: Any) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SyncSubscription",
            "metadata": {"name": name},
            "spec": {"service": name, "events": events, **spec},
        }

    def create_subscription(self, cluster: str, name: str, events: list[str], **spec: Any) -> None:
        body = self.subscription_body(name, events, **spec)
        self.custom(cluster).create_namespaced_custom_object(GROUP, VERSION, self.namespace, "syncsubscriptions", body)

    def patch_subscription(self, cluster: str, name: str, spec: dict[str, Any]) -> None:
        self.custom(cluster).patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "syncsubscriptions", name, {"spec": spec}
        )

    def create_publication(self, cluster: str, name: str, events: list[str], service: str | None = None) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SyncPublication",
            "metadata": {"name": name},
            "spec": {"service": service or name, "events": events},
        }
        self.custom(cluster).create_namespaced_custom_object(GROUP, VERSION, self.namespace, "syncpublications", body)

    def delete_publication(self, cluster: str, name: str) -> None:
        self.custom(cluster).delete_namespaced_custom_object(GROUP, VERSION, self.namespace, "syncpublications", name)

    def service_secret(self, cluster: str, service: str) -> dict[str, str] | None:
        """The operator-made ``rabbitsync-<service>`` Secret's values, or None while there is none."""
        try:
            secret = self.core(cluster).read_namespaced_secret(f"rabbitsync-{service}", self.namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}

    def broker_user(self, cluster: str, service: str) -> str:
        return f"rabbitsync.{cluster}.{self.namespace}.{service}"

    def delete_subscription(self, cluster: str, name: str) -> None:
        self.custom(cluster).delete_namespaced_custom_object(GROUP, VERSION, self.namespace, "syncsubscriptions", name)

    def get(self, cluster: str, name: str) -> dict[str, Any] | None:
        try:
            return self.custom(cluster).get_namespaced_custom_object(  # type: ignore[no-any-return]
                GROUP, VERSION, self.namespace, "syncsubscriptions", name
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    @staticmethod
    def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
        for c in ((obj or {}).get("status") or {}).get("conditions", []):
            if c["type"] == type_:
                return c  # type: ignore[no-any-return]
        return {}

    def wait_condition(
        self, cluster: str, name: str, type_: str, status: str, timeout: float = CONVERGE, reason: str | None = None
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            obj = self.get(cluster, name)
            c = self.condition(obj, type_)
            if c.get("status") == status and (reason is None or c.get("reason") == reason):
                return obj
            return None

        what = f"{cluster} {self.namespace}/{name} {type_}={status}" + (f" ({reason})" if reason else "")
        try:
            return wait_for(check, timeout, what)
        except AssertionError as e:
            obj = self.get(cluster, name)
            raise AssertionError(f"{e}\nstatus: {json.dumps((obj or {}).get('status'), indent=1)}") from None

    def wait_ready(self, cluster: str, name: str, timeout: float = CONVERGE) -> dict[str, Any]:
        """Ready: events will be consumed (topology verified, sidecar injected, a consumer attached)."""
        return self.wait_condition(cluster, name, "Ready", "True", timeout)

    def wait_synced(self, cluster: str, name: str, timeout: float = CONVERGE) -> dict[str, Any]:
        """The topology verified on the broker: what these tests, which run no pods and so no consumer,
        wait for (Ready also needs a consumer since issue 12)."""
        return self.wait_condition(cluster, name, "TopologySynced", "True", timeout)

    def wait_gone(self, cluster: str, name: str, timeout: float = CONVERGE) -> None:
        wait_for(lambda: self.get(cluster, name) is None, timeout, f"{cluster} {self.namespace}/{name} deleted")

    def events(self, cluster: str, name: str) -> list[tuple[str, str, str]]:
        found = self.core(cluster).list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name},involvedObject.kind=SyncSubscription"
        )
        return [(e.type, e.reason, e.message or "") for e in found.items]

    def wait_event(self, cluster: str, name: str, reason: str, timeout: float = CONVERGE) -> tuple[str, str, str]:
        def check() -> tuple[str, str, str] | None:
            return next((e for e in self.events(cluster, name) if e[1] == reason), None)

        try:
            return wait_for(check, timeout, f"Event {reason} on {cluster} {self.namespace}/{name}")
        except AssertionError as e:
            raise AssertionError(f"{e}\nevents: {self.events(cluster, name)}") from None

    # --- The broker ----------------------------------------------------------------------------------

    def queues(self, cluster: str, subscription: str) -> dict[str, dict[str, Any]]:
        """The subscription's queues on the broker: main, delay queues and DLQ."""
        main = self.queue_name(cluster, subscription)
        return {n: q for n, q in self.mgmt.queues(main).items() if n == main or n.startswith(main + ".")}

    def bindings(self, cluster: str, subscription: str) -> set[str]:
        """The event bindings of the subscription's queue; its one backfill binding is checked apart."""
        queue = self.queue_name(cluster, subscription)
        found = self.mgmt.bindings(self.exchange, queue)
        backfill = backfill_binding_key(self.namespace, queue)
        assert backfill in found, f"{queue} lacks its backfill binding {backfill}"
        return found - {backfill}

    def key(self, event_type: str) -> str:
        """The routing key of ``event_type`` in this test's namespace: what the operator binds."""
        return routing_key(self.namespace, event_type)

    def keys(self, *event_types: str) -> set[str]:
        return {self.key(t) for t in event_types}

    def cleanup(self) -> None:
        """Queues and service users a test left (retain, give-up) and its exchange; best effort, the broker
        may be stopped."""
        try:
            for cluster in self.clusters:
                for queue in self.mgmt.queues(f"rabbitsync.{cluster}.{self.namespace}."):
                    self.mgmt.delete_queue(queue)
                for user in self.mgmt.call("GET", "/api/users"):
                    if user["name"].startswith(f"rabbitsync.{cluster}.{self.namespace}."):
                        self.mgmt.call("DELETE", f"/api/users/{self.mgmt.q(user['name'])}")
            self.mgmt.delete_exchange(self.exchange)
        except (urllib.error.URLError, OSError):
            pass


def health_status(op: operators.OperatorProcess) -> int:
    with urllib.request.urlopen(op.healthz, timeout=5) as response:
        return int(response.status)


def closed_port() -> int:
    """A loopback port nothing listens on (free now; nothing in the tests binds it)."""
    return processes.free_port()
