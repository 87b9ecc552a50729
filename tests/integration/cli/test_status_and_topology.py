"""`rabbitsync status` and `rabbitsync topology` across two real clusters and the real broker."""

from __future__ import annotations

import json

import pika
from cliscene import rabbitsync


def test_status_shows_both_clusters_problems_first(scene, kube_args, namespace):
    for cluster in ("east", "west"):
        scene.setup_broker(cluster)
        scene.subscribe(cluster, "menu", ["RESTAURANT_CREATED"])
    scene.subscribe("west", "orders", ["ORDER_CREATED"], reconcile=False)

    done = rabbitsync(*kube_args, "status", "-n", namespace, "-o", "json")
    assert done.returncode == 1, done.stderr  # west's orders is not reconciled: not Ready
    rows = json.loads(done.stdout)
    assert [(r["cluster"], r["name"], r["ready"]) for r in rows] == [
        ("west", "orders", "Unknown"),
        ("east", "menu", "True"),
        ("west", "menu", "True"),
    ]
    assert rows[1]["sidecar"] == "False/DeploymentNotFound" and rows[1]["events"] == ["RESTAURANT_CREATED"]

    table = rabbitsync(*kube_args, "status", "-n", namespace)
    assert table.stdout.splitlines()[0].split()[:3] == ["CLUSTER", "KIND", "NAMESPACE/NAME"]
    assert "\033[" not in table.stdout  # not a terminal: no colour


def test_topology_finds_an_unowned_queue_and_a_one_cluster_subscription(
    scene, kube_args, namespace, broker, tmp_path, graphviz
):
    for cluster in ("east", "west"):
        scene.setup_broker(cluster)
        scene.subscribe(cluster, "menu", ["RESTAURANT_CREATED"])
    scene.subscribe("east", "billing", ["ORDER_CREATED"])
    ghost = f"rabbitsync.east.{namespace}.ghost"
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    connection.channel().queue_declare(ghost, durable=True)
    scene.queues.append(ghost)
    connection.close()

    done = rabbitsync(*kube_args, "topology", "-n", namespace, "--management-url", broker.management_url, "-o", "json")
    assert done.returncode == 1, done.stderr
    found = json.loads(done.stdout)
    problems = {(p["kind"], p["subject"]) for p in found["problems"]}
    assert ("unowned-queue", ghost) in problems
    assert ("one-cluster", "billing") in problems
    assert found["unownedQueues"] == [ghost]

    # Without --management-url the SyncBrokers' Secrets say where the management API is.
    assert ghost in rabbitsync(*kube_args, "topology", "-n", namespace).stdout

    picture = tmp_path / "topology.svg"
    drawn = rabbitsync(*kube_args, "topology", "-n", namespace, "--format", "svg", "--output", str(picture))
    assert drawn.returncode == 1 and picture.read_text().lstrip().startswith(("<?xml", "<svg"))
    assert "one-cluster" in drawn.stderr


def test_topology_reads_a_cluster_syncbroker_secret_in_the_operator_namespace(scene, kube_args, namespace, broker, uid):
    """No SyncBroker in the namespace: the shared broker is found through a ClusterSyncBroker and its Secret."""
    scene.setup_cluster_broker("east", f"shared-{uid}")
    ghost = f"rabbitsync.east.{namespace}.ghost"
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    connection.channel().queue_declare(ghost, durable=True)
    scene.queues.append(ghost)
    connection.close()

    done = rabbitsync(*kube_args, "topology", "-n", namespace, env={"RABBITSYNC_OPERATOR_NAMESPACE": namespace})
    assert ghost in done.stdout, done.stderr
