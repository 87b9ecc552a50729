"""The sidecar is a native one, migrated from the old regular container; Ready means a consumer is attached.

Issue 10 point 1: the sidecar never decides the pod's readiness, so it is injected as a native sidecar
(an init container with ``restartPolicy: Always``) without a readinessProbe, and a Deployment injected
by an older release (a regular container, same field manager) is migrated by the next reconcile.
Issue 12 point 2: ``Ready=True`` only once a consumer is attached to the subscription's queue.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pika
import pytest
from kubernetes import client
from opkit import CONVERGE, RESYNC_SECONDS, Kit, wait_for

pytestmark = pytest.mark.integration

SIDECAR = "rabbitsync-sidecar"


def _deployment(kit: Kit, name: str, containers: list[dict[str, Any]]) -> None:
    """A Deployment opted in to injection, with no replicas (nothing runs pods in these tests)."""
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "annotations": {"rabbitsync.io/inject": "true"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}},
        },
    }
    client.AppsV1Api(kit.clusters["east"].api).create_namespaced_deployment(kit.namespace, body)


def _pod_spec(kit: Kit, name: str) -> dict[str, Any]:
    found = client.AppsV1Api(kit.clusters["east"].api).read_namespaced_deployment(name, kit.namespace)
    return kit.clusters["east"].api.sanitize_for_serialization(found)["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def test_an_old_regular_sidecar_is_migrated_to_a_native_one_without_readiness_probe(kit: Kit) -> None:
    kit.setup_broker("east")
    _deployment(kit, "svc-m", [{"name": "app", "image": "app:1"}])
    # What an older release applied: a regular container with a readinessProbe, by our field manager.
    old = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "svc-m", "namespace": kit.namespace},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": SIDECAR,
                            "image": "app:1",
                            "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8088}},
                        }
                    ]
                }
            }
        },
    }
    client.AppsV1Api(kit.clusters["east"].api).patch_namespaced_deployment(
        "svc-m",
        kit.namespace,
        old,
        field_manager="rabbitsync-operator",
        force=True,
        _content_type="application/apply-patch+yaml",
    )
    assert [c["name"] for c in _pod_spec(kit, "svc-m")["containers"]] == ["app", SIDECAR]

    kit.create_subscription("east", "svc-m", ["M_IN"])
    injected = kit.wait_condition("east", "svc-m", "SidecarInjected", "True")
    assert kit.condition(injected, "SidecarInjected")["reason"] == "Injected"
    spec = wait_for(
        lambda: (s := _pod_spec(kit, "svc-m")) and [c["name"] for c in s.get("initContainers", [])] == [SIDECAR] and s,
        CONVERGE,
        "the sidecar moved to initContainers",
    )
    assert [c["name"] for c in spec["containers"]] == ["app"], "the old regular sidecar is gone"
    [sidecar] = spec["initContainers"]
    assert sidecar["restartPolicy"] == "Always"
    assert "readinessProbe" not in sidecar and "startupProbe" not in sidecar
    assert sidecar["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_ready_only_once_a_consumer_is_attached(kit: Kit) -> None:
    kit.setup_broker("east")
    _deployment(kit, "svc-c", [{"name": "app", "image": "app:1"}])
    kit.create_subscription("east", "svc-c", ["C_IN"])
    obj = kit.wait_condition("east", "svc-c", "Ready", "False", reason="NoConsumer")
    assert kit.condition(obj, "TopologySynced")["status"] == "True"
    assert kit.condition(obj, "SidecarInjected")["status"] == "True"
    queue = kit.queue_name("east", "svc-c")
    assert queue in kit.condition(obj, "Ready")["message"]

    # A consumer, as the sidecar of a running pod would attach.
    connection = pika.BlockingConnection(pika.URLParameters(kit.broker.amqp_url))
    try:
        channel = connection.channel()
        channel.basic_consume(queue, lambda ch, method, props, body: None)

        def ready() -> dict[str, Any] | None:
            connection.process_data_events(time_limit=0.5)
            o = kit.get("east", "svc-c")
            return o if kit.condition(o, "Ready").get("status") == "True" else None

        obj = wait_for(ready, 2 * RESYNC_SECONDS + 30, "Ready once consumed")
        assert kit.condition(obj, "Ready")["reason"] == "TopologyVerified"
        assert obj["status"]["consumers"] == 1 and obj["status"]["eventCount"] == 1
    finally:
        connection.close()


def _deployment_applies(kit: Kit) -> float:
    """Server-side applies of Deployments the API server has served (its ``apiserver_request_total``)."""
    api = kit.clusters["east"].api
    method, url, headers, body, post = api.param_serialize("GET", "/metrics", auth_settings=["BearerToken"])
    response = api.call_api(method, url, headers, body, post)
    response.read()
    text = response.data.decode()
    found = re.findall(r"^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$", text, re.M)
    return sum(
        float(value) for labels, value in found if 'verb="APPLY"' in labels and 'resource="deployments"' in labels
    )


def test_a_sidecar_in_place_is_not_applied_again(kit: Kit) -> None:
    """A subscription without a consumer is reconciled in full every resync interval: each computes the
    same sidecar, which the Deployment already holds as the API server serves it (defaults added)."""
    kit.setup_broker("east")
    _deployment(kit, "svc-p", [{"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]}])
    kit.create_subscription("east", "svc-p", ["P_IN"])
    kit.wait_condition("east", "svc-p", "Ready", "False", reason="NoConsumer")
    before = _deployment_applies(kit)
    time.sleep(3 * RESYNC_SECONDS + 2)
    assert _deployment_applies(kit) == before
    assert kit.condition(kit.get("east", "svc-p"), "SidecarInjected")["status"] == "True"
