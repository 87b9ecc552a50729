"""Issue 9's proof: rotating a service's broker credentials under a steady stream of writes loses nothing.

The publisher (east's restaurant) and a consumer (west's restaurant-menu) are rotated while restaurants
are created in east at a steady rate. A rotation gives the service's broker user a new password and rolls
its pods: unsent outbox rows wait for the new relay, unacked deliveries go back to the queue.
"""

from __future__ import annotations

import threading
import time
import urllib.error
from typing import Any

from e2e_support import Deployment, eventually, pods_ready
from test_two_clusters import RESTAURANT_COPIES, SHARED, create_restaurant

from harness import demo, nodedeploy

RATE_PER_S = 10
STREAM_S = 20.0
ROTATIONS = ((4.0, "east", "restaurant"), (10.0, "west", "restaurant-menu"))


def rotate(deployment: Deployment, cluster: str, service: str, value: str) -> None:
    deployment.kubectl(
        cluster,
        "-n",
        demo.APP_NAMESPACE,
        "annotate",
        f"deployment/{service}",
        f"rabbitsync.io/rotate-credentials={value}",
        "--overwrite",
    )


def credentials_checksum(deployment: Deployment, cluster: str, service: str) -> str:
    """The pod template's credentials checksum: a rotation taken up changes it, and the pods roll."""
    template = "jsonpath={.spec.template.metadata.annotations.rabbitsync\\.io/credentials}"
    return deployment.kubectl(cluster, "-n", demo.APP_NAMESPACE, "get", f"deployment/{service}", "-o", template)


def rolled_out(deployment: Deployment, cluster: str, service: str) -> None:
    """Wait until ``service``'s pods run the Deployment's current template, ready."""
    if not deployment.nodes:
        kubeconfig = deployment.kubeconfigs[cluster]
        eventually(
            lambda: (
                demo.current_pod(deployment.directory, cluster, kubeconfig, service)
                and pods_ready(deployment, cluster)[service]
            ),
            120,
            f"{cluster}/{service} ready again on its current template",
        )
        return
    rollout = ("rollout", "status", f"deployment/{service}", "--timeout=180s")
    deployment.kubectl(cluster, "-n", demo.APP_NAMESPACE, *rollout)
    kubeconfig = deployment.kubeconfigs[cluster]
    eventually(
        lambda: nodedeploy.settled(nodedeploy.pods(kubeconfig, demo.APP_NAMESPACE), (service,)),
        120,
        f"{cluster}/{service}'s old pod gone",
    )


def stream(deployment: Deployment, created: list[str], refused: list[str], stop: threading.Event) -> None:
    """POST a restaurant every 1/RATE_PER_S s; only a 201 counts, a refused or dropped request is retried."""
    n = 0
    while not stop.is_set():
        started = time.monotonic()
        try:
            created.append(create_restaurant(deployment, "east", f"rotation-{n}"))
            n += 1
        except (OSError, urllib.error.HTTPError) as error:
            # The restaurant pod is being replaced: the write was not acknowledged, so it is not counted.
            refused.append(str(error))
        time.sleep(max(0.0, 1 / RATE_PER_S - (time.monotonic() - started)))


def copy_of(deployment: Deployment, cluster: str, service: str) -> dict[str, dict[str, Any]]:
    """Every restaurant one service of one cluster holds, by id (paged: the API returns 1,000 at most)."""
    return {r["id"]: {k: r[k] for k in SHARED} for r in demo.restaurants(deployment.url(cluster, service, ""))}


def missing_or_diverged(deployment: Deployment, ids: list[str]) -> dict[str, list[str]]:
    """For each copy (cluster/service) that lacks or differs on some of ``ids``: which ones."""
    copies = {f"{c}/{s}": copy_of(deployment, c, s) for c, s in RESTAURANT_COPIES}
    reference = copies["east/restaurant"]
    wrong = {
        name: [i for i in ids if copy.get(i) is None or copy[i] != reference.get(i)] for name, copy in copies.items()
    }
    return {name: bad for name, bad in wrong.items() if bad}


def test_a_rotation_under_a_steady_stream_loses_no_event(deployment: Deployment):
    created: list[str] = []
    refused: list[str] = []
    stop = threading.Event()
    writer = threading.Thread(target=stream, args=(deployment, created, refused, stop))
    before = {(c, s): credentials_checksum(deployment, c, s) for _, c, s in ROTATIONS}
    begun = time.monotonic()
    writer.start()
    try:
        for at, cluster, service in ROTATIONS:
            time.sleep(max(0.0, at - (time.monotonic() - begun)))
            rotate(deployment, cluster, service, f"under-stream-{int(begun)}")
        # The operator takes a rotation up at its next reconcile of the service (the publication's
        # resync, every 30 s): the stream goes on until both are taken up and their pods have rolled.
        # This also leaves the shared deployment serving on the rolled pods for the next test.
        for _, cluster, service in ROTATIONS:
            eventually(
                lambda c=cluster, s=service: credentials_checksum(deployment, c, s) != before[c, s],
                120,
                f"{cluster}/{service}'s rotation taken up",
            )
        for _, cluster, service in ROTATIONS:
            rolled_out(deployment, cluster, service)
        time.sleep(max(0.0, STREAM_S - (time.monotonic() - begun)))
    finally:
        stop.set()
        writer.join()
    assert len(created) >= RATE_PER_S * STREAM_S / 4, f"too few writes were accepted: {len(created)}, {refused[:3]}"
    deadline = time.monotonic() + 180
    wrong: dict[str, list[str]] | OSError = {"not checked yet": []}
    while wrong and time.monotonic() < deadline:
        try:
            wrong = missing_or_diverged(deployment, created)
        except OSError as error:  # a rolled pod still starting
            wrong = error
        time.sleep(1)
    assert not wrong, f"of {len(created)} accepted writes, copies lack or differ on: {wrong}"
