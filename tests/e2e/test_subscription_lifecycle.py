"""A subscription added later injects a sidecar that starts consuming; removing it takes the sidecar away."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from e2e_support import Deployment, eventually

from harness import demo, nodedeploy

NS = demo.APP_NAMESPACE
SIDECAR = "rabbitsync-sidecar"


def _audit_deployment(dep: Deployment) -> dict:
    """A new service: the restaurant-menu code under another name, without any sidecar yet."""
    raw = json.loads(dep.kubectl("east", "get", "deployment", "restaurant-menu", "-n", NS, "-o", "json"))
    template = raw["spec"]["template"]
    template["metadata"]["labels"] = {"app.kubernetes.io/name": "audit"}
    template["spec"]["containers"] = [c for c in template["spec"]["containers"] if c["name"] != SIDECAR]
    # The sidecar is a native one (an init container); an older release put it among the containers.
    template["spec"]["initContainers"] = [c for c in template["spec"].get("initContainers", []) if c["name"] != SIDECAR]
    for container in template["spec"]["containers"] + template["spec"].get("initContainers", []):
        for var in container.get("env", []):
            if var["name"] == "RABBITSYNC_SERVICE":
                var["value"] = "audit"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        # Opted in to injection, as every Deployment the operator may add its sidecar to must be.
        "metadata": {"name": "audit", "namespace": NS, "annotations": {"rabbitsync.io/inject": "true"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "audit"}}, "template": template},
    }


def _containers(dep: Deployment) -> list[str]:
    raw = json.loads(dep.kubectl("east", "get", "deployment", "audit", "-n", NS, "-o", "json"))
    spec = raw["spec"]["template"]["spec"]
    # Long-running containers only: the native sidecar is an init container with restartPolicy Always.
    natives = [c for c in spec.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    return [c["name"] for c in spec["containers"] + natives]


def _apply(dep: Deployment, obj: dict, tmp_path) -> None:
    path = tmp_path / f"{obj['kind']}.json"
    path.write_text(json.dumps(obj))
    dep.kubectl("east", "apply", "-f", str(path))


def _running_with_sidecar(deployment: Deployment) -> str | None:
    pod = demo.podrunner.status(deployment.directory, "east", NS).get("audit")
    if not pod or SIDECAR not in pod["containers"]:
        return None
    base = f"http://{pod['ip']}:8000"
    ready = demo.reachable(f"http://{pod['ip']}:8088/readyz") and demo.reachable(base + "/healthz")
    return base if ready else None


def _on_node_with_sidecar(deployment: Deployment) -> str | None:
    # On a real node the kubelet's probes decide readiness; the pod IP is reached inside the node.
    pods = nodedeploy.pods(deployment.kubeconfigs["east"], NS)
    if not nodedeploy.settled(pods, ("audit",)):
        return None
    pod = next(p for p in pods if p["metadata"]["labels"].get("app.kubernetes.io/name") == "audit")
    return f"http://{pod['status']['podIP']}:8000"


def _audit_has(deployment: Deployment, base: str, rid: str) -> bool:
    if not deployment.nodes:
        return demo.find_item(base + "/api/restaurants/", rid) is not None
    try:
        listed = nodedeploy.get_json(deployment.nodes["east"], base + "/api/restaurants/")
    except (OSError, ValueError):
        return False
    items = listed.get("items", listed) if isinstance(listed, dict) else listed
    return any(i.get("id") == rid for i in items)


def test_subscription_added_later_then_removed(deployment: Deployment, broker, tmp_path):
    if not deployment.local:
        pytest.skip("reads the new pod's address from the local pod runner; on kind the service has no port-forward")
    _apply(deployment, _audit_deployment(deployment), tmp_path)
    try:
        assert _containers(deployment) == ["app"]
        subscription = {
            "apiVersion": "rabbitsync.io/v1alpha1",
            "kind": "SyncSubscription",
            # Opted in to injection, as every Deployment the operator may add its sidecar to must be.
            "metadata": {"name": "audit", "namespace": NS, "annotations": {"rabbitsync.io/inject": "true"}},
            "spec": {"service": "audit", "events": ["RESTAURANT_CREATED"]},
        }
        _apply(deployment, subscription, tmp_path)
        eventually(lambda: SIDECAR in _containers(deployment), 60, "sidecar injected into audit")

        wait_for = _on_node_with_sidecar if deployment.nodes else _running_with_sidecar
        eventually(lambda: wait_for(deployment), 180, "audit pod with a ready sidecar")
        created = demo.http("POST", deployment.url("east", "restaurant", "/api/restaurants/"), {"name": "Audited"})

        def consumed() -> bool:
            # Looked up each time: were a later rollout to replace the pod, the old address never answers.
            base = wait_for(deployment)
            return base is not None and _audit_has(deployment, base, created["id"])

        eventually(consumed, 60, "new event consumed by audit")

        deployment.kubectl("east", "delete", "syncsubscription", "audit", "-n", NS, "--wait=true", "--timeout=60s")
        eventually(lambda: _containers(deployment) == ["app"], 60, "sidecar removed with the last subscription")
        queue = urllib.parse.quote("rabbitsync.east.foodapp.audit", safe="")

        def queue_gone() -> bool:
            try:
                broker.management_get(f"/api/queues/{urllib.parse.quote(deployment.vhost, safe='')}/{queue}")
            except OSError as e:  # urllib's HTTPError 404
                return "404" in str(e)
            return False

        eventually(queue_gone, 30, "audit queue deleted (deletionPolicy: delete)")
    finally:
        deployment.kubectl("east", "delete", "deployment", "audit", "-n", NS, "--ignore-not-found")
