"""`rabbitsync trace` on real sidecars in two clusters and the real broker: an event followed to every replica
that applied it, one retried then dead-lettered in both, and one published by a sidecar's relay, applied in
the other cluster and skipped as its own in the publisher's; and delivery unharmed without the trace stream."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from cliscene import rabbitsync
from test_dlq import SERVICE_PROJECT, applied, depth
from test_dlq import publish_event as publish

from harness.polling import eventually
from harness.processes import free_port
from rabbitsync.amqp import BrokerEndpoint, RabbitBroker
from rabbitsync.conventions import broker_username, trace_name
from rabbitsync.topology import sidecar_contract as contract
from rabbitsync.topology.trace import trace_plan

EVENTS = ["svc.flaky", "svc.traced", "svc.effect"]


@pytest.fixture
def trace_stream(scene, broker) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The scene exchange's trace stream."""
    yield declare_trace_stream(broker, scene.exchange)
    drop_trace_stream(broker.amqp_url, trace_name(scene.exchange))


def declare_trace_stream(broker: Any, exchange: str) -> str:
    """As the operators declare it."""
    RabbitBroker(BrokerEndpoint(broker.amqp_url, broker.management_url)).apply(trace_plan(exchange))
    return trace_name(exchange)


def drop_trace_stream(url: str, name: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_delete(name)
    channel.exchange_delete(name)
    connection.close()


@pytest.fixture
def sidecars(scene, namespace, tmp_path, broker, identities) -> Iterator[Callable[[str], Path]]:  # type: ignore[no-untyped-def]
    """``start(cluster)``: subscription ``consumer`` of EVENTS (two attempts) in that cluster and its real
    sidecar, logged in as that cluster's consumer user; returns its database."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(cluster: str) -> Path:
        scene.setup_broker(cluster)
        retry = {"maxAttempts": 2, "initialBackoffMs": 100, "maxBackoffMs": 100}
        scene.subscribe(cluster, "consumer", EVENTS, retry=retry)
        spec = contract.build(
            cluster=cluster,
            namespace=namespace,
            subscription="consumer",
            events=EVENTS,
            max_attempts=2,
            initial_backoff_ms=100,
            max_backoff_ms=100,
            dead_letter=True,
            prefetch=10,
        )
        home = tmp_path / cluster
        (home / "attempts").mkdir(parents=True)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "svcproject.settings",
            "SVC_DB_PATH": str(home / "svc.sqlite3"),
            "SVC_ATTEMPTS_DIR": str(home / "attempts"),
            "PYTHONPATH": os.pathsep.join([str(SERVICE_PROJECT), os.environ.get("PYTHONPATH", "")]),
            "RABBITSYNC_AMQP_URL": identities.url(broker_username(cluster, namespace, "consumer")),
            "RABBITSYNC_CLUSTER": cluster,
            "RABBITSYNC_NAMESPACE": namespace,
            "RABBITSYNC_SERVICE": "consumer",
            "RABBITSYNC_EXCHANGE": scene.exchange,
            "RABBITSYNC_SUBSCRIPTIONS": contract.dumps([spec]),
            "RABBITSYNC_HTTP_PORT": str(free_port()),
            "HOSTNAME": f"consumer-{cluster}-0",
        }
        subprocess.run([sys.executable, "-m", "django", "migrate", "-v", "0"], env=env, cwd=SERVICE_PROJECT, check=True)
        log = (home / "sidecar.log").open("wb")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "django", "rabbitsync_sidecar"],
                env=env,
                cwd=SERVICE_PROJECT,
                stdout=log,
                stderr=log,
            )
        )
        return home / "svc.sqlite3"

    yield start
    for process in processes:
        process.kill()
        process.wait()


def traced(kube: list[str], event_id: str) -> dict[str, Any] | None:
    done = rabbitsync(*kube, "trace", event_id, "-o", "json")
    if done.returncode == 1:
        return None
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def settled(kube: list[str], event_id: str, outcomes: set[str]) -> Callable[[], dict[str, Any] | None]:
    """The trace once every route's outcome is one of ``outcomes``."""

    def check() -> dict[str, Any] | None:
        found = traced(kube, event_id)
        if found and len(found["routes"]) == 2 and {r["outcome"] for r in found["routes"]} <= outcomes:
            return found
        return None

    return check


def outbox_ids(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("select event_id from rabbitsync_outbox where sent_at is not null")]


@pytest.mark.timeout(1500)  # two clusters, two sidecars and a dozen CLI runs on a shared 2-core machine
def test_trace_follows_events_to_every_replica_through_retries_and_dead_letters(
    trace_stream, sidecars, scene, namespace, identities, kube_args, clusters, broker
):
    east_db, west_db = sidecars("east"), sidecars("west")
    publisher = identities.url(broker_username("east", namespace, "publisher"))

    # Each `rabbitsync` run costs seconds (and tens of them on a loaded machine): wait on the databases
    # and queues first, so the trace is asked once the records are there.
    fine = publish(publisher, scene.exchange, namespace, "svc.flaky", {"fail_times": 0}, "order-1")
    eventually(lambda: applied(east_db, fine) and applied(west_db, fine), 120, "applied in both clusters")
    story = eventually(settled(kube_args, fine, {"applied"}), 240, "the event traced to both clusters")
    assert applied(east_db, fine) and applied(west_db, fine)
    assert {(r["cluster"], r["queue"]) for r in story["routes"]} == {
        ("east", f"rabbitsync.east.{namespace}.consumer"),
        ("west", f"rabbitsync.west.{namespace}.consumer"),
    }
    appliers = {(r["cluster"], r["service"], r["pod"]) for r in story["records"] if r["kind"] == "applied"}
    assert appliers == {("east", "consumer", "consumer-east-0"), ("west", "consumer", "consumer-west-0")}
    assert all(r["verified"] for r in story["records"])  # written by each replica's own broker user
    assert story["event"]["publisher"].endswith(f"/namespaces/{namespace}/services/publisher")
    assert story["event"]["subject"] == "order-1" and story["event"]["eventTime"]

    poison = publish(publisher, scene.exchange, namespace, "svc.flaky", {"fail_times": 99}, "order-2")
    for cluster in ("east", "west"):
        dlq = f"rabbitsync.{cluster}.{namespace}.consumer.dlq"
        eventually(lambda q=dlq: depth(broker.amqp_url, q) == 1, 120, f"dead-lettered in {cluster}")
    story = eventually(settled(kube_args, poison, {"dead-lettered (failed)"}), 240, "dead-lettered in both")
    assert [r["retries"] for r in story["routes"]] == [1, 1]
    retried = [r for r in story["records"] if r["kind"] == "retried"]
    assert {r["cluster"] for r in retried} == {"east", "west"}
    assert all(r["attempt"] == 1 and r["error"] == "builtins.RuntimeError: flaky failure 1" for r in retried)
    dead = [r for r in story["records"] if r["kind"] == "dead-lettered"]
    assert all(r["attempt"] == 2 and r["reason"] == "failed" for r in dead)
    table = rabbitsync(*kube_args, "trace", poison)  # the people's form, with its exit code
    assert table.returncode == 0 and "dead-lettered (failed)" in table.stdout and "flaky failure 2" in table.stdout

    # A follow-up published by east's sidecar (its relay writes `published`): applied in west, own in east.
    publish(publisher, scene.exchange, namespace, "svc.traced", {"follow_up": True}, "order-3")
    [follow_up] = eventually(lambda: outbox_ids(east_db) or None, 120, "east's follow-up sent")
    eventually(lambda: applied(west_db, follow_up), 120, "the follow-up applied in west")
    story = eventually(settled(kube_args, follow_up, {"applied", "own"}), 240, "the follow-up settled")
    assert story["event"]["publisher"] == f"east/{namespace}/consumer"
    assert story["event"]["publisherPod"] == "consumer-east-0" and story["event"]["publishedAt"]
    assert {(r["cluster"], r["outcome"]) for r in story["routes"]} == {("east", "own"), ("west", "applied")}

    nothing = rabbitsync(*kube_args, "trace", "no-such-event")
    assert nothing.returncode == 1 and nothing.stderr.count("\n") == 1 and "no trace record" in nothing.stderr


def test_without_the_trace_stream_events_are_still_applied(sidecars, scene, namespace, identities, broker):
    east_db = sidecars("east")
    publisher = identities.url(broker_username("east", namespace, "publisher"))
    ids = [publish(publisher, scene.exchange, namespace, "svc.flaky", {"fail_times": 0}, f"s-{n}") for n in range(5)]
    eventually(lambda: all(applied(east_db, i) for i in ids), 60, "applied with no stream to trace to")
    RabbitBroker(BrokerEndpoint(broker.amqp_url, broker.management_url)).apply(
        trace_plan(scene.exchange)
    )  # the stream comes...
    drop_trace_stream(broker.amqp_url, trace_name(scene.exchange))  # ...and goes while records flow
    more = [publish(publisher, scene.exchange, namespace, "svc.flaky", {"fail_times": 0}, f"t-{n}") for n in range(5)]
    eventually(lambda: all(applied(east_db, i) for i in more), 60, "applied after the stream went away")
