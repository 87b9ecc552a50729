"""A service's own broker identity on a real broker, made by the operator running under the manifests' RBAC.

With service A's credentials, read from the ``rabbitsync-<A>`` Secret the operator wrote, the broker
refuses (ACCESS_REFUSED) everything A did not declare, while A's own flow works. Also: the user and
Secret go with A's last declaration, a rotation makes the old password useless and rolls the pods,
injection needs the Deployment's opt-in, a ClusterSyncBroker keeps the admin Secret out of the
namespace, and no password appears in any status, Event or operator log line.
"""

from __future__ import annotations

import urllib.error
from collections.abc import Callable, Iterator
from typing import Any

import pika
import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from opkit import CONVERGE, GROUP, VERSION, Kit, wait_for
from pika.adapters.blocking_connection import BlockingChannel

from rabbitsync.conventions import routing_key

pytestmark = pytest.mark.integration

A, B = "svc-a", "svc-b"
# pika names a refused login by the stage it failed at.
LOGIN_REFUSED = (pika.exceptions.ProbableAuthenticationError, pika.exceptions.ProbableAccessDeniedError)


def _publication(kit: Kit, cluster: str, name: str) -> dict[str, Any] | None:
    try:
        return kit.custom(cluster).get_namespaced_custom_object(  # type: ignore[no-any-return]
            GROUP, VERSION, kit.namespace, "syncpublications", name
        )
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def _publication_ready(kit: Kit, name: str) -> dict[str, Any]:
    try:
        return wait_for(
            lambda: (p := _publication(kit, "east", name)) and kit.condition(p, "Ready").get("status") == "True" and p,
            CONVERGE,
            f"SyncPublication {name} Ready",
        )
    except AssertionError as e:
        raise AssertionError(f"{e}\nstatus: {(_publication(kit, 'east', name) or {}).get('status')}") from None


@pytest.fixture
def a_and_b(kit: Kit) -> Iterator[dict[str, str]]:
    """A consumes A_IN and publishes A_OUT; B consumes B_IN. Returns A's Secret once its rights cover both."""
    kit.setup_broker("east")
    kit.create_subscription("east", A, ["A_IN"])
    kit.create_publication("east", A, ["A_OUT"])
    kit.create_subscription("east", B, ["B_IN"])
    kit.wait_synced("east", A)
    kit.wait_synced("east", B)
    _publication_ready(kit, A)
    # Both reconciles of A write the same rights; wait for one that has seen both declarations.
    user = kit.mgmt.q(kit.broker_user("east", A))
    wait_for(
        lambda: "A_OUT" in str(kit.mgmt.call("GET", f"/api/users/{user}/topic-permissions")),
        CONVERGE,
        "A's rights cover its publication",
    )
    yield wait_for(lambda: kit.service_secret("east", A), CONVERGE, f"Secret rabbitsync-{A}")


def _channel(uri: str) -> tuple[pika.BlockingConnection, BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    channel = connection.channel()
    channel.confirm_delivery()
    return connection, channel


def _refused(uri: str, action: Callable[[BlockingChannel], object]) -> str:
    connection, channel = _channel(uri)
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
            action(channel)
    finally:
        if connection.is_open:
            connection.close()
    assert caught.value.reply_code == 403, caught.value
    assert "ACCESS_REFUSED" in caught.value.reply_text
    return str(caught.value.reply_text)


def test_a_cannot_consume_bs_queue(kit: Kit, a_and_b: dict[str, str]) -> None:
    queue_b = kit.queue_name("east", B)
    assert queue_b in _refused(a_and_b["uri"], lambda ch: ch.basic_consume(queue_b, lambda *_: None))
    assert queue_b in _refused(a_and_b["uri"], lambda ch: ch.basic_get(queue_b))


def test_a_cannot_declare_or_delete_any_queue(kit: Kit, a_and_b: dict[str, str]) -> None:
    queue_a = kit.queue_name("east", A)
    _refused(a_and_b["uri"], lambda ch: ch.queue_declare(f"{queue_a}.mine", durable=True))
    _refused(a_and_b["uri"], lambda ch: ch.queue_declare("anything", durable=False, exclusive=True))
    _refused(a_and_b["uri"], lambda ch: ch.queue_delete(queue_a))
    _refused(a_and_b["uri"], lambda ch: ch.queue_delete(kit.queue_name("east", B)))
    assert queue_a in kit.queues("east", A)


def test_a_cannot_publish_a_type_it_did_not_declare(kit: Kit, a_and_b: dict[str, str]) -> None:
    for key in (routing_key(kit.namespace, "B_IN"), routing_key(kit.namespace, "A_IN"), "A_OUT", "#"):
        assert key in _refused(a_and_b["uri"], lambda ch, k=key: ch.basic_publish(kit.exchange, k, b"{}"))


def test_a_cannot_bind_to_the_exchange(kit: Kit, a_and_b: dict[str, str]) -> None:
    queue_a = kit.queue_name("east", A)
    _refused(a_and_b["uri"], lambda ch: ch.queue_bind(queue_a, kit.exchange, routing_key="#"))
    assert kit.bindings("east", A) == {"A_IN"} or all(k.endswith("A_IN") for k in kit.bindings("east", A))


def test_as_own_flow_works(kit: Kit, a_and_b: dict[str, str]) -> None:
    connection, channel = _channel(a_and_b["uri"])
    try:
        # Publish its declared type, stamped with its broker-checked user_id.
        channel.basic_publish(
            kit.exchange,
            routing_key(kit.namespace, "A_OUT"),
            b"{}",
            pika.BasicProperties(user_id=kit.broker_user("east", A), delivery_mode=2),
        )
        # Consume its own queue.
        queue_a = kit.queue_name("east", A)
        kit.mgmt.publish("amq.default", queue_a, '{"hello": "a"}')
        got = wait_for(lambda: channel.basic_get(queue_a, auto_ack=True)[2], CONVERGE, f"a message in {queue_a}")
        assert got == b'{"hello": "a"}'
        # Retries and dead letters go to its own queues through the default exchange.
        channel.basic_publish("", f"{queue_a}.dlq", b"{}", mandatory=True)
    finally:
        connection.close()


def test_user_and_secret_go_with_the_last_declaration(kit: Kit, a_and_b: dict[str, str]) -> None:
    user = kit.broker_user("east", A)
    kit.delete_subscription("east", A)
    kit.wait_gone("east", A)
    assert kit.service_secret("east", A) is not None, "the publication still needs them"
    assert kit.mgmt.call("GET", f"/api/users/{kit.mgmt.q(user)}")["name"] == user
    kit.delete_publication("east", A)
    wait_for(lambda: kit.service_secret("east", A) is None, CONVERGE, "Secret removed")
    with pytest.raises(urllib.error.HTTPError) as gone:
        kit.mgmt.call("GET", f"/api/users/{kit.mgmt.q(user)}")
    assert gone.value.code == 404
    with pytest.raises(LOGIN_REFUSED):
        _channel(a_and_b["uri"])


def _deployment(kit: Kit, name: str, opted_in: bool) -> None:
    labels = {"app": name}
    annotations = {"rabbitsync.io/inject": "true"} if opted_in else {}
    body = client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, annotations=annotations),
        spec=client.V1DeploymentSpec(
            replicas=0,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="app:1")]),
            ),
        ),
    )
    client.AppsV1Api(kit.clusters["east"].api).create_namespaced_deployment(kit.namespace, body)


def _template(kit: Kit, name: str) -> dict[str, Any]:
    found = client.AppsV1Api(kit.clusters["east"].api).read_namespaced_deployment(name, kit.namespace)
    return kit.clusters["east"].api.sanitize_for_serialization(found)["spec"]["template"]  # type: ignore[no-any-return]


def test_a_rotation_makes_the_old_password_useless_and_rolls_the_pods(kit: Kit) -> None:
    kit.setup_broker("east")
    _deployment(kit, "svc-r", opted_in=True)
    kit.create_subscription("east", "svc-r", ["R_IN"])
    kit.wait_condition("east", "svc-r", "SidecarInjected", "True")
    old = wait_for(lambda: kit.service_secret("east", "svc-r"), CONVERGE, "Secret rabbitsync-svc-r")
    template = _template(kit, "svc-r")
    [sidecar] = [c for c in template["spec"]["initContainers"] if c["name"] == "rabbitsync-sidecar"]
    env = {e["name"]: e for e in sidecar["env"]}
    assert env["RABBITSYNC_AMQP_URL"]["valueFrom"]["secretKeyRef"] == {"name": "rabbitsync-svc-r", "key": "uri"}
    before = template["metadata"]["annotations"]["rabbitsync.io/credentials"]
    _channel(old["uri"])[0].close()

    patch = {"metadata": {"annotations": {"rabbitsync.io/rotate-credentials": "rotation-1"}}}
    client.AppsV1Api(kit.clusters["east"].api).patch_namespaced_deployment("svc-r", kit.namespace, patch)
    new = wait_for(
        lambda: (s := kit.service_secret("east", "svc-r")) and s["password"] != old["password"] and s,
        CONVERGE,
        "a new password",
    )
    wait_for(
        lambda: _template(kit, "svc-r")["metadata"]["annotations"]["rabbitsync.io/credentials"] != before,
        CONVERGE,
        "the pod template's credentials checksum changed (the pods roll)",
    )
    _channel(new["uri"])[0].close()
    with pytest.raises(LOGIN_REFUSED):
        _channel(old["uri"])


def test_a_deployment_that_has_not_opted_in_gets_nothing_injected(kit: Kit) -> None:
    kit.setup_broker("east")
    _deployment(kit, "svc-n", opted_in=False)
    kit.create_subscription("east", "svc-n", ["N_IN"])
    condition = kit.condition(
        kit.wait_condition("east", "svc-n", "SidecarInjected", "False", reason="InjectionNotAllowed"), "SidecarInjected"
    )
    assert "rabbitsync.io/inject" in condition["message"]
    assert [c["name"] for c in _template(kit, "svc-n")["spec"]["containers"]] == ["app"]


def test_a_cluster_broker_keeps_the_admin_secret_out_of_the_namespace(kit: Kit, operators_running) -> None:  # type: ignore[no-untyped-def]
    name, secret = f"cb-{kit.uid}", f"cb-admin-{kit.uid}"
    core = kit.core("east")
    core.create_namespaced_secret(
        "rabbitsync-system",
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=secret),
            # The management URI too: a broker of our own (RABBITSYNC_BROKER_PRIVATE=1) is not on 15672.
            string_data={"uri": kit.broker.amqp_url, "managementUri": kit.broker.management_url},
        ),
    )
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ClusterSyncBroker",
        "metadata": {"name": name},
        "spec": {"secretRef": {"name": secret}, "exchange": kit.exchange, "allowedNamespaces": ["elsewhere"]},
    }
    custom = kit.custom("east")
    custom.create_cluster_custom_object(GROUP, VERSION, "clustersyncbrokers", body)
    try:
        kit.create_subscription("east", "svc-c", ["C_IN"], broker=name)
        kit.wait_condition("east", "svc-c", "Ready", "False", reason="NamespaceNotAllowed")
        custom.patch_cluster_custom_object(
            GROUP, VERSION, "clustersyncbrokers", name, {"spec": {"allowedNamespaces": [kit.namespace]}}
        )
        kit.wait_synced("east", "svc-c", timeout=CONVERGE + 10)
        names = {s.metadata.name for s in core.list_namespaced_secret(kit.namespace).items}
        assert names == {"rabbitsync-svc-c"}, names
        service = kit.service_secret("east", "svc-c")
        assert service is not None and kit.broker.amqp_url.split("@")[0] not in str(service)
        _assert_no_password_anywhere(kit, operators_running, service["password"])
    finally:
        kit.delete_subscription("east", "svc-c")
        kit.wait_gone("east", "svc-c")
        custom.delete_cluster_custom_object(GROUP, VERSION, "clustersyncbrokers", name)
        core.delete_namespaced_secret(secret, "rabbitsync-system")


def _assert_no_password_anywhere(kit: Kit, operators_running: Any, password: str) -> None:
    texts = [op.log.read_text(errors="replace") for op in operators_running.values()]
    for plural in ("syncsubscriptions", "syncpublications"):
        texts.append(str(kit.custom("east").list_namespaced_custom_object(GROUP, VERSION, kit.namespace, plural)))
    texts.append(str(kit.core("east").list_namespaced_event(kit.namespace).items))
    assert not [t for t in texts if password in t]


def test_the_operator_may_write_no_secret_but_its_services_own(kit: Kit, operators_running) -> None:  # type: ignore[no-untyped-def]
    """RBAC lets it write Secrets; the admission policy next to its ClusterRole narrows that to its own."""
    as_operator = client.CoreV1Api(config.new_client_from_config(config_file=operators_running["east"].kubeconfig))
    ours = {"app.kubernetes.io/managed-by": "rabbitsync-operator"}
    for name, labels in (("someone-elses", ours), ("rabbitsync-unlabelled", {})):
        body = client.V1Secret(metadata=client.V1ObjectMeta(name=name, labels=labels), string_data={"k": "v"})
        with pytest.raises(ApiException) as refused:
            as_operator.create_namespaced_secret(kit.namespace, body)
        assert refused.value.status in (403, 422) and "rabbitsync operator" in str(refused.value.body), refused.value
    kit.core("east").create_namespaced_secret(
        kit.namespace, client.V1Secret(metadata=client.V1ObjectMeta(name="rabbitsync-theirs"), string_data={"k": "v"})
    )
    with pytest.raises(ApiException) as refused:
        as_operator.delete_namespaced_secret("rabbitsync-theirs", kit.namespace)
    assert "Secrets it made" in str(refused.value.body)
