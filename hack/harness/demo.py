"""``make demo``: the two-cluster story on this machine, deployed from the manifests as written.

1. the dev environment (clusters east and west, one RabbitMQ);
2. per cluster, ``kubectl apply -k manifests/overlays/<cluster>``: CRDs, RBAC, the operator's
   Deployment, the ClusterSyncBroker, the three services with their SyncSubscriptions and
   SyncPublications; the ClusterSyncBroker's admin Secret (in rabbitsync-system, never in foodapp) is
   pointed at the local broker (the overlay names an external one);
3. the pod runner (the kubelet stand-in) runs the Deployments of ``rabbitsync-system`` and the
   services' namespace, so the operator runs in-cluster under its ServiceAccount and the sidecars it
   injects run exactly as it wrote them;
4. a restaurant created in east shows up in west's restaurant service and in both clusters' menu and
   order services; once every subscription is Ready, their status is printed from both clusters
   (``kubectl get`` and ``rabbitsync status``) and the topology drawn to ``topology.svg``.
Everything keeps running until ``make dev-down``; ``services.json`` in the state directory lists
each cluster's service base URLs.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from harness import delivery, environment, nodedeploy, operators, podrunner, processes
from harness.nodes import Node

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_NAMESPACE = "foodapp"
NAMESPACES = ("rabbitsync-system", APP_NAMESPACE)
SERVICES = ("restaurant", "restaurant-menu", "order")
IP_PREFIXES = {"east": "127.0.1", "west": "127.0.2"}


def _say(text: str) -> None:
    print(text, flush=True)


def http(method: str, url: str, body: dict[str, Any] | None = None, *, timeout: float = 10) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


def restaurants(base_url: str, *, timeout: float = 10) -> list[dict[str, Any]]:
    """Every restaurant a service holds, tombstones included: the API answers 1,000 at most a page."""
    found: list[dict[str, Any]] = []
    while True:
        page = http(
            "GET", f"{base_url}/api/restaurants/?include_deleted=true&limit=1000&offset={len(found)}", timeout=timeout
        )
        found += page["items"]
        if not page["items"] or len(found) >= page["count"]:
            return found


def reachable(url: str) -> bool:
    """A 2xx answer (health endpoints answer plain text, so the body is not parsed)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return bool(200 <= resp.status < 300)
    except (urllib.error.URLError, OSError):
        return False


def _point_brokers_at_local(kubeconfig: Path, amqp_url: str, management_url: str, ca_pem: str | None) -> None:
    brokers = json.loads(operators.kubectl(kubeconfig, "get", "clustersyncbrokers", "-o", "json"))
    for item in brokers["items"]:
        secret = item["spec"]["secretRef"]["name"]
        patch = {"data": nodedeploy.secret_data(amqp_url, management_url, ca_pem)}
        operators.kubectl(
            kubeconfig, "patch", "secret", secret, "-n", operators.NAMESPACE, "--type=merge", "-p", json.dumps(patch)
        )
        if ca_pem:
            # A TLS broker (RABBITSYNC_BROKER_TLS=1): its CA rides in the same Secret.
            tls = {"spec": {"tls": {"caSecretRef": {"name": secret, "key": "ca.crt"}}}}
            name = item["metadata"]["name"]
            operators.kubectl(kubeconfig, "patch", "clustersyncbroker", name, "--type=merge", "-p", json.dumps(tls))


def service_urls(directory: Path, cluster: str) -> dict[str, str]:
    pods = podrunner.status(directory, cluster, APP_NAMESPACE)
    urls = {}
    for name, pod in pods.items():
        app_ports = [port for key, port in pod["ports"].items() if not key.startswith("rabbitsync-sidecar/")]
        if app_ports:
            urls[name] = f"http://{pod['ip']}:{app_ports[0]}"
    return urls


def _sidecar_ready(directory: Path, cluster: str, service: str) -> bool:
    pod = podrunner.status(directory, cluster, APP_NAMESPACE).get(service)
    if not pod or "rabbitsync-sidecar" not in pod["containers"]:
        return False
    return reachable(f"http://{pod['ip']}:8088/readyz")


ROLLOUT_QUIET_S = 10.0
"""How long every service's pod must have run its Deployment's current template for ``deploy`` to return."""


def _wait_rolled_out(directory: Path, cluster: str, kubeconfig: Path) -> None:
    """Until each service's pod runs its Deployment's current pod template, and has for ROLLOUT_QUIET_S.

    Deployments left by an earlier deployment in the same clusters start with the sidecar already
    injected; the operator, starting beside them, injects again once it resumes (the Secret now points
    at this deployment's vhost), and the pods roll. Returning on the first pods let writes meet the
    rollout (connection refused).
    """
    steady: dict[str, str] = {}
    since = time.monotonic()

    def rolled_out() -> bool:
        nonlocal steady, since
        pods = {s: current_pod(directory, cluster, kubeconfig, s) for s in SERVICES}
        if any(p is None for p in pods.values()) or not all(_sidecar_ready(directory, cluster, s) for s in SERVICES):
            steady = {}
            return False
        if pods != steady:
            steady, since = {s: str(p) for s, p in pods.items()}, time.monotonic()
        return time.monotonic() - since >= ROLLOUT_QUIET_S

    processes.wait_until(rolled_out, 180, f"{cluster} services rolled out")


def current_pod(directory: Path, cluster: str, kubeconfig: Path, service: str) -> str | None:
    """The name of ``service``'s pod if it runs the Deployment's current template, else None."""
    pod = podrunner.status(directory, cluster, APP_NAMESPACE).get(service)
    if not pod or pod["pod"] != podrunner.pod_name(kubeconfig, APP_NAMESPACE, service):
        return None
    return str(pod["pod"])


def deploy(
    directory: Path,
    kubeconfigs: dict[str, Path],
    amqp_url: str,
    management_url: str,
    ip_prefixes: dict[str, str] = IP_PREFIXES,
    ca_pem: str | None = None,
) -> dict[str, dict[str, str]]:
    """Apply each cluster's overlay, run its pods, wait until every service and sidecar is ready.

    Returns (and writes to ``services.json``) each cluster's service base URLs. Also what the e2e
    tests deploy, so the demo and the tests exercise the same manifests the same way.
    """
    podrunner.stop_runners(directory)
    for cluster, kubeconfig in kubeconfigs.items():
        _say(f"==> {cluster}: kubectl apply -k manifests/overlays/{cluster}")
        operators.install(kubeconfig)
        overlay = str(REPO_ROOT / "manifests" / "overlays" / cluster)
        operators.kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-k", overlay)
        _point_brokers_at_local(kubeconfig, amqp_url, management_url, ca_pem)
        # The services' Django signing key: random per deployment, never the manifest's placeholder.
        key = {"data": {"secretKey": base64.b64encode(secrets.token_urlsafe(50).encode()).decode()}}
        operators.kubectl(kubeconfig, "patch", "secret", "foodapp-django", "-n", APP_NAMESPACE, "-p", json.dumps(key))
        podrunner.start_runner(directory, cluster, kubeconfig, NAMESPACES, ip_prefixes[cluster])
    for cluster in kubeconfigs:
        _say(f"==> {cluster}: waiting for the operator, the services and their injected sidecars")
        processes.wait_until(
            lambda c=cluster: set(SERVICES) <= set(service_urls(directory, c)), 180, f"{cluster} services"
        )
        for service in SERVICES:
            processes.wait_until(
                lambda c=cluster, s=service: reachable(service_urls(directory, c)[s] + "/healthz"),
                120,
                f"{cluster} {service}",
            )
            processes.wait_until(
                lambda c=cluster, s=service: _sidecar_ready(directory, c, s), 180, f"{cluster} {service} sidecar"
            )
        _wait_rolled_out(directory, cluster, kubeconfigs[cluster])
    urls = {cluster: service_urls(directory, cluster) for cluster in kubeconfigs}
    (directory / "services.json").write_text(json.dumps(urls, indent=2))
    return urls


def deploy_on_nodes(
    directory: Path,
    kubeconfigs: dict[str, Path],
    amqp_url: str,
    management_url: str,
    nodes: dict[str, Node],
) -> dict[str, dict[str, str]]:
    """``deploy`` on real nodes: the same overlays, run by each cluster's kubelet (see nodedeploy.py)."""
    for cluster, kubeconfig in kubeconfigs.items():
        _say(f"==> {cluster}: kubectl apply -k manifests/overlays/{cluster} (broker: the node's link)")
        operators.install(kubeconfig)
        host = nodes[cluster].network.host_ip
        nodedeploy.apply_overlay(
            kubeconfig,
            REPO_ROOT / "manifests" / "overlays" / cluster,
            directory / f"overlay-{cluster}.yaml",
            nodedeploy.via(amqp_url, host),
            nodedeploy.via(management_url, host),
            directory / "volumes" / cluster,
        )
    urls = {}
    for cluster, kubeconfig in kubeconfigs.items():
        _say(f"==> {cluster}: waiting for the operator, the services and their injected sidecars (real pods)")
        processes.wait_until(
            lambda k=kubeconfig: nodedeploy.settled(nodedeploy.pods(k, APP_NAMESPACE), SERVICES),
            300,
            f"{cluster} pods Running and ready with the sidecar",
        )
        urls[cluster] = nodedeploy.expose(
            kubeconfig, nodes[cluster], APP_NAMESPACE, SERVICES, directory / f"services-{cluster}-forward.log"
        )
        for service, url in urls[cluster].items():
            processes.wait_until(lambda u=url: reachable(u + "/healthz"), 60, f"{cluster} {service} via its Service")
    (directory / "services.json").write_text(json.dumps(urls, indent=2))
    return urls


def run() -> None:
    env = environment.up()
    # The demo's operators run in-cluster, from the manifests: no `make operators-up` processes beside them.
    operators.down(env.directory)
    kubeconfigs = {name: Path(c.kubeconfig) for name, c in env.clusters.items()}
    if env.nodes:
        urls = deploy_on_nodes(env.directory, kubeconfigs, env.broker.amqp_url, env.broker.management_url, env.nodes)
    else:
        urls = deploy(env.directory, kubeconfigs, env.broker.amqp_url, env.broker.management_url)
    _say(f"==> services.json: {json.dumps(urls)}")
    story(urls)
    if not env.nodes:  # the new service's database is a pod runner directory (see harness.delivery)
        delivery.story(env.directory, kubeconfigs, urls, _say)
    for cluster, kubeconfig in kubeconfigs.items():
        # A sidecar attached after the operator's last look shows NoConsumer until its next resync
        # (RABBITSYNC_RESYNC_SECONDS, 30 in the manifests): print the table once it has looked again.
        processes.wait_until(lambda k=kubeconfig: _all_ready(k), 180, f"{cluster} subscriptions Ready")
        _say(f"\n==> {cluster}: kubectl get syncsubscriptions -A")
        _say(operators.kubectl(kubeconfig, "get", "syncsubscriptions", "-A"))
    flags = [a for k in kubeconfigs.values() for a in ("--kubeconfig", str(k))]
    _say(f"\n==> rabbitsync {' '.join(flags)} status")
    _say(_rabbitsync(*flags, "status"))
    if shutil.which("dot"):
        picture = env.directory / "topology.svg"
        _rabbitsync(*flags, "topology", "--format", "svg", "--output", str(picture))
        _say(f"==> the topology, drawn: {picture}")
    _say("The demo keeps running: try the URLs in services.json. Stop everything with: make dev-down")


def _rabbitsync(*args: str) -> str:
    """The ``rabbitsync`` command of this environment: its output and errors as one text."""
    done = subprocess.run([str(Path(sys.executable).parent / "rabbitsync"), *args], capture_output=True, text=True)
    return done.stdout + done.stderr


def _all_ready(kubeconfig: Path) -> bool:
    found = json.loads(operators.kubectl(kubeconfig, "get", "syncsubscriptions", "-A", "-o", "json"))["items"]
    return bool(found) and all(
        any(c["type"] == "Ready" and c["status"] == "True" for c in (item.get("status") or {}).get("conditions", []))
        for item in found
    )


def find_item(url: str, entity_id: str) -> dict[str, Any] | None:
    try:
        items = http("GET", url)
    except (urllib.error.URLError, OSError, ValueError):
        return None
    items = items.get("items", items) if isinstance(items, dict) else items
    return next((i for i in items if i.get("id") == entity_id), None)


def story(urls: dict[str, dict[str, str]]) -> None:
    created = http(
        "POST",
        urls["east"]["restaurant"] + "/api/restaurants/",
        {"name": "Opensoft Diner", "email": "diner@example.com"},
    )
    rid = created["id"]
    _say(f"\n==> east/restaurant: created restaurant {rid} {created}")
    started = time.monotonic()
    places = [("west", "restaurant")] + [(c, s) for c in ("east", "west") for s in ("restaurant-menu", "order")]
    for cluster, service in places:
        url = urls[cluster][service] + "/api/restaurants/"
        processes.wait_until(
            lambda u=url: find_item(u, rid) is not None, 60, f"restaurant {rid} in {cluster}/{service}"
        )
        _say(f"    {cluster}/{service}: {find_item(url, rid)}  (+{time.monotonic() - started:.2f}s)")
    http("PATCH", urls["west"]["restaurant"] + f"/api/restaurants/{rid}/", {"name": "Opensoft Diner (renamed in west)"})
    _say("\n==> west/restaurant: renamed it")
    for cluster, service in [("east", "restaurant"), *places[1:]]:
        url = urls[cluster][service] + "/api/restaurants/"
        processes.wait_until(
            lambda u=url: (find_item(u, rid) or {}).get("name", "").endswith("(renamed in west)"),
            60,
            f"rename in {cluster}/{service}",
        )
        _say(f"    {cluster}/{service}: {find_item(url, rid)['name']}")  # type: ignore[index]


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run()
