"""Service users over the management API: the requests made, and no password in any error; the fakes' writes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from rabbitsync.amqp import AccessRefused, BrokerUnreachable, BrokerUser, Permissions, TopicPermissions, UserLimits
from rabbitsync.amqp.management import ManagementClient
from rabbitsync.amqp.rabbit import RabbitBroker
from rabbitsync.amqp.users import RecentUsers
from rabbitsync.operator.kube import Conflict, Forbidden, ObjectRef, SecretWrite
from rabbitsync.operator.kube.fake import FakeCluster
from rabbitsync.transport import BrokerEndpoint

pytestmark = pytest.mark.unit

PASSWORD = "s3cr/t@pw:%#"
USER = BrokerUser(
    username="rabbitsync.east.shop.orders",
    password=PASSWORD,
    permissions=Permissions(configure="^$", write="^(ev)$", read="^q$"),
    topic=TopicPermissions(exchange="ev", write="^shop\\.(A)$", read="^$"),
    limits=UserLimits(max_connections=8, max_channels=16),
)


class _Recorder(BaseHTTPRequestHandler):
    calls: list[tuple[str, str, Any]] = []
    status = 204

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        type(self).calls.append((self.command, self.path, body))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_DELETE = do_GET = _handle

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def served() -> Iterator[tuple[BrokerEndpoint, type[_Recorder]]]:
    """An endpoint whose management API is a recorder."""
    handler = type("Recorder", (_Recorder,), {"calls": [], "status": 204})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = BrokerEndpoint(
        f"amqp://admin:adm1n@127.0.0.1:{server.server_port}/prod", f"http://127.0.0.1:{server.server_port}"
    )
    try:
        yield endpoint, handler
    finally:
        server.shutdown()


@pytest.fixture
def management(served: tuple[BrokerEndpoint, type[_Recorder]]) -> tuple[ManagementClient, type[_Recorder]]:
    endpoint, handler = served
    return ManagementClient(endpoint), handler


def test_put_user_sets_password_rights_topic_rights_and_limits(management: tuple[ManagementClient, Any]) -> None:
    client, recorder = management
    client.put_user(USER)
    name = "rabbitsync.east.shop.orders"
    assert recorder.calls == [
        ("PUT", f"/api/users/{name}", {"password": PASSWORD, "tags": ""}),
        ("PUT", f"/api/permissions/prod/{name}", {"configure": "^$", "write": "^(ev)$", "read": "^q$"}),
        ("PUT", f"/api/topic-permissions/prod/{name}", {"exchange": "ev", "write": "^shop\\.(A)$", "read": "^$"}),
        ("PUT", f"/api/user-limits/{name}/max-connections", {"value": 8}),
        ("PUT", f"/api/user-limits/{name}/max-channels", {"value": 16}),
    ]
    assert PASSWORD not in repr(USER)


@pytest.mark.parametrize(("status", "error"), [(401, AccessRefused), (503, BrokerUnreachable)])
def test_a_refused_put_names_the_user_never_the_password(
    management: tuple[ManagementClient, Any], status: int, error: type[Exception]
) -> None:
    client, recorder = management
    recorder.status = status
    with pytest.raises(error) as caught:
        client.put_user(USER)
    assert USER.username in str(caught.value) and PASSWORD not in str(caught.value)
    assert "adm1n" not in str(caught.value)


def test_delete_user_says_whether_there_was_one(management: tuple[ManagementClient, Any]) -> None:
    client, recorder = management
    assert client.delete_user("u") is True
    recorder.status = 404
    assert client.delete_user("u") is False
    assert [c[:2] for c in recorder.calls] == [("DELETE", "/api/users/u")] * 2


def test_an_identical_user_put_lately_is_not_put_again_a_changed_or_older_one_is(
    served: tuple[BrokerEndpoint, Any],
) -> None:
    """A hundred subscriptions of one service reconciled together put their shared user once (issue 11)."""
    endpoint, recorder = served
    now = [0.0]
    broker = RabbitBroker(endpoint, users=RecentUsers(fresh_seconds=30.0, clock=lambda: now[0]))
    broker.put_user(USER)
    broker.put_user(USER)
    assert len(recorder.calls) == 5, "the same user again at once: nothing sent"
    broker.put_user(replace(USER, password="rotated"))
    assert len(recorder.calls) == 10, "a new password is put at once"
    now[0] = 31.0
    broker.put_user(replace(USER, password="rotated"))
    assert len(recorder.calls) == 15, "put again once it is not fresh: a user deleted out of band comes back"
    broker.delete_user(USER.username)
    broker.put_user(replace(USER, password="rotated"))
    assert [c[0] for c in recorder.calls[15:]] == ["DELETE"] + ["PUT"] * 5, "deleted: put again"


def test_after_a_failed_put_the_user_is_put_whole_again(served: tuple[BrokerEndpoint, Any]) -> None:
    """A put that fails half-way may leave the broker with neither version: nothing is skipped after it."""
    endpoint, recorder = served
    broker = RabbitBroker(endpoint, users=RecentUsers(fresh_seconds=30.0))
    broker.put_user(USER)
    recorder.status = 503
    with pytest.raises(BrokerUnreachable):
        broker.put_user(replace(USER, password="rotated"))
    recorder.status = 204
    broker.put_user(USER)
    assert len(recorder.calls) == 5 + 1 + 5, "the first put, the failed call, the whole user again"


def _write(version: str | None) -> SecretWrite:
    return SecretWrite(
        name="rabbitsync-orders",
        data={"uri": b"amqp://x"},
        labels={"app.kubernetes.io/managed-by": "rabbitsync-operator"},
        annotations={},
        owners=(ObjectRef("rabbitsync.io/v1alpha1", "SyncSubscription", "shop", "orders", "u1"),),
        resource_version=version,
    )


def test_the_fake_refuses_a_second_create_and_a_stale_replace() -> None:
    kube = FakeCluster()
    kube.write_secret("shop", _write(None))
    with pytest.raises(Conflict):
        kube.write_secret("shop", _write(None))
    stored = kube.stored_secret("shop", "rabbitsync-orders")
    assert stored is not None and stored.data == {"uri": b"amqp://x"}
    kube.write_secret("shop", _write(stored.resource_version))
    with pytest.raises(Conflict):
        kube.write_secret("shop", _write(stored.resource_version))
    assert kube.secret_meta["shop", "rabbitsync-orders"]["ownerReferences"][0]["uid"] == "u1"
    kube.forbidden.add(("delete", "Secret"))
    with pytest.raises(Forbidden, match="may not be deleted"):
        kube.delete_secret("shop", "rabbitsync-orders")
    kube.forbidden.clear()
    kube.delete_secret("shop", "rabbitsync-orders")
    kube.delete_secret("shop", "rabbitsync-orders")
    assert kube.stored_secret("shop", "rabbitsync-orders") is None
