"""A service's own broker identity through the fakes: user, rights, Secret, rotation, removal, no leaks."""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import quote, urlsplit

import pytest
from opscene import NS, SETTINGS, Scene, condition, reasons

from rabbitsync.amqp import rights_for
from rabbitsync.operator import credentials, sidecar_spec
from rabbitsync.topology import naming
from rabbitsync.transport import BrokerEndpoint

pytestmark = pytest.mark.unit

USER = "rabbitsync.east.shop.orders"
SECRET = "rabbitsync-orders"


def _secret(scene: Scene) -> dict[str, str]:
    return scene.kube.secret_text(NS, SECRET)


def test_rights_read_only_own_queues_and_publish_only_declared_types() -> None:
    perms, topic = rights_for(
        cluster="east", namespace="shop", exchange="rabbitsync.events", subscriptions=["orders"], published=["A.B", "C"]
    )
    assert perms.configure == "^$"
    read = re.compile(perms.read)
    for queue in (
        "rabbitsync.east.shop.orders",
        "rabbitsync.east.shop.orders.dlq",
        "rabbitsync.east.shop.orders.retry.500ms",
    ):
        assert read.fullmatch(queue), queue
    for queue in ("rabbitsync.east.shop.orders2", "rabbitsync.west.shop.orders", "rabbitsync.east.shop.other", "x"):
        assert not read.fullmatch(queue), queue
    write = re.compile(perms.write)
    assert write.fullmatch("rabbitsync.events") and write.fullmatch("amq.default")
    assert not write.fullmatch("rabbitsync.eventsX") and not write.fullmatch("rabbitsync.east.shop.orders")
    keys = re.compile(topic.write)
    assert keys.fullmatch("shop.A.B") and keys.fullmatch("shop.C")
    assert not keys.fullmatch("shop.AxB") and not keys.fullmatch("other.C") and not keys.fullmatch("C")
    assert topic.read == "^$"


def test_no_declaration_no_right() -> None:
    perms, topic = rights_for(cluster="east", namespace="shop", exchange="ev", subscriptions=[], published=[])
    assert (perms.write, perms.read, topic.write) == ("^$", "^$", "^$")
    consumer_only, topic = rights_for(
        cluster="east", namespace="shop", exchange="ev", subscriptions=["s"], published=[]
    )
    assert not re.fullmatch(consumer_only.write, "ev") and topic.write == "^$"


def test_every_service_may_write_trace_records_and_nothing_else_more() -> None:
    """Issue 12: the trace exchange routes only to its stream, so writing it widens nothing."""
    for subscriptions, published in ((["s"], []), ([], ["A"]), (["s"], ["A"])):
        perms, _topic = rights_for(
            cluster="east", namespace="shop", exchange="ev", subscriptions=subscriptions, published=published
        )
        assert re.fullmatch(perms.write, "ev.trace")
        assert not re.fullmatch(perms.write, "ev.trace2") and not re.fullmatch(perms.write, "ev.unroutable")
        assert bool(re.fullmatch(perms.write, "amq.default")) == bool(subscriptions)


def test_a_consumer_may_publish_its_retries_into_its_clusters_delay_exchanges_only() -> None:
    perms, _topic = rights_for(cluster="east", namespace="shop", exchange="ev", subscriptions=["s"], published=[])
    write = re.compile(perms.write)
    for delay in (naming.delay_name("east", "quorum", 1000), naming.delay_name("east", "classic", 60000)):
        assert write.fullmatch(delay), delay
    assert write.fullmatch("amq.default"), "dead letters still go to its DLQ by name"
    for other in (
        naming.delay_name("west", "quorum", 1000),
        naming.delay_name("east-2", "quorum", 1000),
        naming.delay_name("east", "quorum", 1000) + "x",
        "rabbitsync.east.@delay.quorum.ms",
        naming.retries_exchange("east"),
        naming.orphaned_retries_name("east"),
    ):
        assert not write.fullmatch(other), other
    publisher, _topic = rights_for(cluster="east", namespace="shop", exchange="ev", subscriptions=[], published=["A"])
    assert not re.fullmatch(publisher.write, naming.delay_name("east", "quorum", 1000)), "it has no retries"


def test_a_cluster_name_naming_sanitizes_is_matched_as_naming_writes_it() -> None:
    perms, _topic = rights_for(cluster="prod east", namespace="shop", exchange="ev", subscriptions=["s"], published=[])
    assert re.fullmatch(perms.write, naming.delay_name("prod east", "quorum", 1000))
    assert not re.fullmatch(perms.write, "rabbitsyncXprod-east.@delay.quorum.1000ms"), "a dot is a dot"


def test_a_subscription_gives_its_service_a_user_and_a_secret_with_its_own_uri() -> None:
    scene = Scene.ready()
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "CredentialsReady") == ("True", "CredentialsReady")
    user = scene.broker.users[USER]
    assert len(user.password) >= 43  # 32 random bytes, URL-safe base64
    data = _secret(scene)
    uri = urlsplit(data["uri"])
    assert (uri.scheme, uri.hostname, uri.port, uri.path) == ("amqp", "broker.example", 5672, "/")
    assert (uri.username, uri.password) == (USER, user.password)
    assert data["username"] == USER and data["ca.crt"] == ""
    assert user.limits == dataclasses.replace(user.limits, max_connections=SETTINGS.service_max_connections)
    meta = scene.kube.secret_meta[NS, SECRET]
    assert meta["labels"] == {"app.kubernetes.io/managed-by": "rabbitsync-operator"}
    assert [o["kind"] for o in meta["ownerReferences"]] == ["SyncSubscription"]
    # The admin credential appears nowhere in the tenant's Secret, and the pods read only the service's.
    assert "guest" not in str(data)
    template = scene.kube.deployments[NS, "orders"]["spec"]["template"]
    assert template["metadata"]["annotations"][sidecar_spec.CREDENTIALS_ANNOTATION]


def test_publications_become_topic_rights_and_a_publish_only_service_gets_a_sidecar() -> None:
    scene = Scene.ready()
    outcome = scene.reconcile_publication(scene.publish(events=["ORDER_CREATED", "ORDER_PAID"]))
    assert condition(outcome, "Ready") == ("True", "CredentialsReady")
    assert condition(outcome, "SidecarInjected") == ("True", "Injected")
    assert outcome.status["user"] == USER and outcome.status["secret"] == SECRET
    topic = scene.broker.users[USER].topic
    assert re.fullmatch(topic.write, "shop.ORDER_PAID") and not re.fullmatch(topic.write, "shop.ORDER_DELETED")
    sidecar = scene.kube.sidecar(NS, "orders")
    assert sidecar is not None
    env = {e["name"]: e for e in sidecar["env"]}
    assert env["RABBITSYNC_SUBSCRIPTIONS"]["value"] == "[]"
    assert env["RABBITSYNC_CA_PEM"]["valueFrom"]["secretKeyRef"] == {"name": SECRET, "key": "ca.crt"}


def test_the_same_password_is_kept_until_a_rotation_is_asked_for() -> None:
    scene = Scene.ready()
    sub = scene.subscribe()
    scene.reconcile(sub)
    first = _secret(scene)["password"]
    checksum = scene.kube.deployments[NS, "orders"]["spec"]["template"]["metadata"]["annotations"]
    before = dict(checksum)
    scene.reconcile(sub)
    assert _secret(scene)["password"] == first and scene.broker.users[USER].password == first

    scene.kube.deployments[NS, "orders"]["metadata"]["annotations"][credentials.ROTATE_ANNOTATION] = "2026-11-30"
    outcome = scene.reconcile(sub)
    second = _secret(scene)["password"]
    assert second != first and scene.broker.users[USER].password == second
    assert "rotated" in str(outcome.status["conditions"])
    after = scene.kube.deployments[NS, "orders"]["spec"]["template"]["metadata"]["annotations"]
    assert after[sidecar_spec.CREDENTIALS_ANNOTATION] != before[sidecar_spec.CREDENTIALS_ANNOTATION]
    scene.reconcile(sub)
    assert _secret(scene)["password"] == second, "the same rotation value rotates once"


def test_a_user_deleted_out_of_band_is_restored_with_the_secrets_password() -> None:
    scene = Scene.ready()
    sub = scene.subscribe()
    scene.reconcile(sub)
    del scene.broker.users[USER]
    scene.reconcile(sub)
    assert scene.broker.users[USER].password == _secret(scene)["password"]


def test_rights_follow_every_declaration_of_the_service_and_go_with_the_last() -> None:
    scene = Scene.ready()
    sub = scene.subscribe()
    pub = scene.publish()
    scene.reconcile(sub)
    scene.reconcile_publication(pub)
    user = scene.broker.users[USER]
    assert re.fullmatch(user.permissions.read, "rabbitsync.east.shop.orders")
    assert re.fullmatch(user.topic.write, "shop.ORDER_CREATED")

    done = scene.delete(sub)
    assert done.done and "CredentialsRemoved" not in reasons(done.notes)
    user = scene.broker.users[USER]
    assert not re.fullmatch(user.permissions.read, "rabbitsync.east.shop.orders"), "no queue left to read"
    assert (NS, SECRET) in scene.kube.secrets

    done = scene.delete_publication(pub)
    assert done.done and "CredentialsRemoved" in reasons(done.notes)
    assert USER not in scene.broker.users and (NS, SECRET) not in scene.kube.secrets
    assert scene.kube.sidecar(NS, "orders") is None


def test_a_secret_of_that_name_not_made_by_the_operator_is_never_overwritten() -> None:
    scene = Scene.ready()
    scene.kube.add_secret(NS, SECRET, uri="amqp://someone:else@h/")
    outcome = scene.reconcile(scene.subscribe())
    assert condition(outcome, "CredentialsReady") == ("False", "SecretNotManaged")
    assert _secret(scene) == {"uri": "amqp://someone:else@h/"} and USER not in scene.broker.users


def test_a_concurrent_create_is_a_conflict_retried_soon() -> None:
    scene = Scene.ready()
    sub = scene.subscribe()
    real = scene.kube.stored_secret
    scene.kube.stored_secret = lambda namespace, name: None  # type: ignore[method-assign]
    scene.kube.add_secret(NS, SECRET, uri="x")
    scene.kube.secret_meta[NS, SECRET] = {"labels": dict(credentials.MANAGED_BY)}
    outcome = scene.reconcile(sub)
    scene.kube.stored_secret = real  # type: ignore[method-assign]
    assert condition(outcome, "CredentialsReady") == ("False", "SecretConflict")
    assert outcome.temporary_failure


def test_ca_of_the_broker_reaches_the_services_secret() -> None:
    scene = Scene.ready()
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    scene.kube.add_secret(NS, "ca", **{"ca.crt": pem})
    scene.kube.add_secret(NS, "rabbitmq", uri="amqps://admin:adm1n@broker.example:5671/prod")
    scene.kube.add_sync_broker(
        NS, "default", {"secretRef": {"name": "rabbitmq"}, "tls": {"caSecretRef": {"name": "ca"}}}
    )
    scene.reconcile(scene.subscribe())
    data = _secret(scene)
    assert data["ca.crt"] == pem
    assert urlsplit(data["uri"]).scheme == "amqps" and urlsplit(data["uri"]).path == "/prod"


NASTY = "p/a@s:s%w#rd"
ENCODED = quote(NASTY, safe="")


@pytest.mark.parametrize("written", [ENCODED, NASTY], ids=["percent-encoded", "raw"])
def test_no_password_in_any_status_event_or_message(written: str) -> None:
    scene = Scene.ready()
    scene.kube.add_secret(NS, "rabbitmq", uri=f"amqp://admin:{written}@broker.example:5672/")
    if written == NASTY:
        # Not a URI: refused without quoting a character of it.
        outcome = scene.reconcile(scene.subscribe())
        assert condition(outcome, "Ready") == ("False", "InvalidBrokerURI")
        assert not any(part in str(outcome) for part in ("p/a", "s%w", "rd@", "@s"))
        return
    sub = scene.subscribe()
    pub = scene.publish()
    texts = [str(scene.reconcile(sub)), str(scene.reconcile_publication(pub))]
    service_password = _secret(scene)["password"]
    scene.kube.deployments[NS, "orders"]["metadata"]["annotations"][credentials.ROTATE_ANNOTATION] = "1"
    texts.append(str(scene.reconcile(sub)))
    rotated = _secret(scene)["password"]
    scene.broker.reachable = False
    texts += [str(scene.reconcile(sub)), str(scene.reconcile_publication(pub))]
    scene.broker.reachable = True
    texts += [str(scene.delete(sub)), str(scene.delete_publication(pub))]
    texts += [str(note) for _, note in scene.kube.events]
    texts.append(repr(scene.resolved))
    for secret in (NASTY, ENCODED, "p/a@s", service_password, rotated):
        assert secret and not any(secret in t for t in texts), secret


def test_an_endpoint_never_shows_its_uri() -> None:
    assert NASTY not in repr(BrokerEndpoint(f"amqp://u:{NASTY.replace('#', '%23').replace('/', '%2F')}@h/"))


def test_a_publisher_reads_its_backfill_requests_and_addresses_snapshots_of_its_declared_types_only() -> None:
    perms, topic = rights_for(
        cluster="east",
        namespace="shop",
        exchange="ev",
        subscriptions=["orders"],
        published=["A.B", "C"],
        service="kitchen",
    )
    read = re.compile(perms.read)
    assert read.fullmatch("rabbitsync.east.shop.kitchen.@backfill-requests")
    assert read.fullmatch("rabbitsync.east.shop.orders.dlq")
    assert not read.fullmatch("rabbitsync.east.shop.other.@backfill-requests")
    assert not read.fullmatch("rabbitsync.west.shop.kitchen.@backfill-requests")
    keys = re.compile(topic.write)
    assert keys.fullmatch("shop.A.B.@backfill.rabbitsync.west.shop.orders")
    assert keys.fullmatch("shop.C.@backfill.rabbitsync.east.shop.menu")
    assert not keys.fullmatch("shop.D.@backfill.rabbitsync.east.shop.menu")
    assert not keys.fullmatch("shop.A.@backfill.rabbitsync.east.shop.menu")
    assert not keys.fullmatch("shop.C.@backfill.")
    consumer_only, _ = rights_for(
        cluster="east", namespace="shop", exchange="ev", subscriptions=["orders"], published=[], service="kitchen"
    )
    assert "@backfill" not in consumer_only.read
