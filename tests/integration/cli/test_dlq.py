"""`rabbitsync dlq` on a poison event a real sidecar dead-lettered: listed (twice, still there, no delivery
counted), shown, replayed to success once the cause is gone, and purged."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pika
import pytest
from cliscene import rabbitsync
from kubernetes import client

from harness.polling import eventually
from harness.processes import free_port
from rabbitsync.conventions import broker_username, routing_key, service_secret_name
from rabbitsync.events import Origin, encode, message_properties, new_event
from rabbitsync.topology import naming
from rabbitsync.topology import sidecar_contract as contract

SERVICE_PROJECT = Path(__file__).resolve().parents[1] / "service"  # the test service (svcproject, svcapp)


def depth(url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


@pytest.fixture
def consumer(scene, namespace, tmp_path, broker, identities, clusters):  # type: ignore[no-untyped-def]
    """Subscription ``consumer`` of ``svc.flaky`` (one attempt: a failure is dead-lettered) and its sidecar,
    logged in as the consumer's own broker user, whose Secret the CLI finds as the operator leaves it."""
    scene.setup_broker("east")
    scene.subscribe(
        "east", "consumer", ["svc.flaky"], retry={"maxAttempts": 1, "initialBackoffMs": 100, "maxBackoffMs": 100}
    )
    spec = contract.build(
        cluster="east",
        namespace=namespace,
        subscription="consumer",
        events=["svc.flaky"],
        max_attempts=1,
        initial_backoff_ms=100,
        max_backoff_ms=100,
        dead_letter=True,
        prefetch=10,
    )
    consumer_url = identities.url(broker_username("east", namespace, "consumer"))
    clusters["east"].core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=service_secret_name("consumer")), string_data={"uri": consumer_url}
        ),
    )
    (tmp_path / "attempts").mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "svcproject.settings",
        "SVC_DB_PATH": str(tmp_path / "svc.sqlite3"),
        "SVC_ATTEMPTS_DIR": str(tmp_path / "attempts"),
        "PYTHONPATH": os.pathsep.join([str(SERVICE_PROJECT), os.environ.get("PYTHONPATH", "")]),
        "RABBITSYNC_AMQP_URL": consumer_url,
        "RABBITSYNC_CLUSTER": "east",
        "RABBITSYNC_NAMESPACE": namespace,
        "RABBITSYNC_SERVICE": "consumer",
        "RABBITSYNC_EXCHANGE": scene.exchange,
        "RABBITSYNC_SUBSCRIPTIONS": contract.dumps([spec]),
        "RABBITSYNC_HTTP_PORT": str(free_port()),
    }
    subprocess.run([sys.executable, "-m", "django", "migrate", "-v", "0"], env=env, cwd=SERVICE_PROJECT, check=True)
    log = (tmp_path / "sidecar.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "django", "rabbitsync_sidecar"], env=env, cwd=SERVICE_PROJECT, stdout=log, stderr=log
    )
    yield spec, Path(env["SVC_DB_PATH"])
    process.kill()
    process.wait()


def publish(url: str, exchange: str, namespace: str, subject: str, fail_times: int) -> str:
    return publish_event(url, exchange, namespace, "svc.flaky", {"fail_times": fail_times}, subject)


def publish_event(url: str, exchange: str, namespace: str, event_type: str, data: dict[str, Any], subject: str) -> str:
    """As east's service ``publisher`` does: through the events exchange (a sidecar refuses what reached its
    queue straight through the default exchange from anyone but itself)."""
    event = new_event(type=event_type, origin=Origin("east", namespace, "publisher"), data=data, subject=subject)
    props = message_properties(event)
    connection = pika.BlockingConnection(pika.URLParameters(url))
    connection.channel().basic_publish(
        exchange,
        routing_key(namespace, event.type),
        encode(event),
        pika.BasicProperties(
            message_id=props.message_id,
            type=props.type,
            timestamp=props.timestamp,
            content_type=props.content_type,
            delivery_mode=2,
            user_id=urlsplit(url).username,
        ),
    )
    connection.close()
    return event.id


def applied(db: Path, event_id: str) -> bool:
    with sqlite3.connect(db) as conn:
        return conn.execute("select count(*) from svc_effect where event_id = ?", (event_id,)).fetchone()[0] == 1


def test_a_dead_letter_is_listed_shown_replayed_to_success_and_purged(
    consumer, clusters, namespace, broker, identities, scene
):
    spec, db = consumer
    dlq = naming.dead_letter_queue_name(spec.queue)
    east = ["--kubeconfig", str(clusters["east"].kubeconfig)]
    ref = f"{namespace}/consumer"
    # fail_times=1: the first attempt fails (dead-lettered after one attempt), the next one succeeds.
    publisher = identities.url(broker_username("east", namespace, "publisher"))
    event_id = publish(publisher, scene.exchange, namespace, "order-7", fail_times=1)
    eventually(lambda: depth(broker.amqp_url, dlq) == 1, 30, "the event dead-lettered by the sidecar")

    for _ in range(2):
        listed = rabbitsync(*east, "dlq", "list", ref, "-o", "json")
        assert listed.returncode == 0, listed.stderr
        [entry] = json.loads(listed.stdout)
        assert (entry["message_id"], entry["type"], entry["subject"]) == (event_id, "svc.flaky", "order-7")
        assert (entry["reason"], entry["attempts"], entry["dead_lettered_by"]) == ("failed", 1, "sidecar")
        assert entry["exception_message"] == "flaky failure 1" and entry["time"]
    assert depth(broker.amqp_url, dlq) == 1
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    _method, properties, _body = connection.channel().basic_get(dlq, auto_ack=False)
    assert not (properties.headers or {}).get("x-delivery-count")  # two looks counted no delivery
    connection.close()  # this look, a plain get, hands it back (and counts one): the CLI never does

    shown = rabbitsync(*east, "dlq", "show", ref, event_id)
    assert shown.returncode == 0 and '"subject": "order-7"' in shown.stdout and "x-rabbitsync-reason" in shown.stdout
    assert rabbitsync(*east, "dlq", "show", ref, "no-such-id").returncode == 1

    nothing = rabbitsync(*east, "dlq", "replay", ref, "--id", "no-such-id")
    assert nothing.returncode == 1 and "no dead letter with id no-such-id" in nothing.stderr
    assert depth(broker.amqp_url, dlq) == 1

    replayed = rabbitsync(*east, "dlq", "replay", ref, "--id", event_id)
    assert replayed.returncode == 0, replayed.stderr
    assert f"replayed 1 dead letter(s) from {dlq} to {spec.queue}" in replayed.stdout
    eventually(lambda: applied(db, event_id), 30, "the replayed event applied by the sidecar")
    assert depth(broker.amqp_url, dlq) == 0
    assert rabbitsync(*east, "dlq", "replay", ref, "--id", event_id).returncode == 1  # twice: nothing left

    publish(publisher, scene.exchange, namespace, "order-8", fail_times=99)
    eventually(lambda: depth(broker.amqp_url, dlq) == 1, 30, "a second dead letter")
    refused = rabbitsync(*east, "dlq", "purge", ref)  # no terminal to ask on, no --yes
    assert refused.returncode == 2 and "--yes" in refused.stderr and depth(broker.amqp_url, dlq) == 1
    purged = rabbitsync(*east, "dlq", "purge", ref, "--yes")
    assert purged.returncode == 0 and "purged 1" in purged.stdout
    assert depth(broker.amqp_url, dlq) == 0


def test_connection_errors_are_one_line(clusters, scene, namespace):
    scene.setup_broker("east")
    scene.subscribe("east", "s", ["svc.flaky"])
    east = ["--kubeconfig", str(clusters["east"].kubeconfig)]
    refused = rabbitsync(*east, "--amqp-url", "amqp://u:s3cret@127.0.0.1:1/", "dlq", "list", f"{namespace}/s")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "Connection refused" in refused.stderr and "s3cret" not in refused.stderr
    bad = rabbitsync(*east, "--amqp-url", "amqp://u:s3cret@[bad", "dlq", "list", f"{namespace}/s")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
