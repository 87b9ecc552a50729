"""The overlays on real nodes: real pods, and the services' base URLs as the host reaches them.

Differences from the pod runner's path (demo.deploy), and why:
- the broker Secret (the one the ClusterSyncBroker names) gets the local broker's URIs *before*
  anything is applied (the overlay is rendered with ``kubectl kustomize`` and its placeholder
  replaced, as the overlay tells a user to),
  because a real kubelet starts the pods at once and a container's env is fixed at its start;
- the URIs name the host end of the node's link (the forwarder), not 127.0.0.1, which in a pod is
  the pod itself;
- readiness is the kubelet's: every service's one pod Running, every container ready, the
  ``rabbitsync-sidecar`` the operator injected in the pod spec the API server holds;
- each PersistentVolumeClaim gets a hostPath PersistentVolume bound to it, since the harness runs no
  provisioner (kind's default StorageClass plays that part there);
- the host reaches each Service's ClusterIP through a forwarder on a 127.0.0.1 port (the host has
  no route into the node): those are the URLs in ``services.json``.
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import socket
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from harness import cgroups, containerd, forward, operators, processes
from harness.nodes import Node

SIDECAR = "rabbitsync-sidecar"
DJANGO_SECRET = "foodapp-django"


def via(url: str, host: str) -> str:
    """``url`` with its host replaced (credentials, port, path and query kept)."""
    parts = urllib.parse.urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}" if userinfo else host
    if parts.port:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def secret_data(amqp_url: str, management_url: str, ca_pem: str | None = None) -> dict[str, str]:
    """The broker Secret's ``data``: what the services (``uri``) and the operator (both, and the CA) read."""
    data = {"uri": amqp_url, "managementUri": management_url, **({"ca.crt": ca_pem} if ca_pem else {})}
    return {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}


def broker_secrets(documents: list[dict[str, Any]]) -> set[str]:
    """The Secrets the rendered overlay's ClusterSyncBrokers and SyncBrokers name (``spec.secretRef``)."""
    return {
        doc["spec"]["secretRef"]["name"] for doc in documents if doc.get("kind") in ("ClusterSyncBroker", "SyncBroker")
    }


def _replace_data(secret: dict[str, Any], data: dict[str, str]) -> None:
    secret.pop("stringData", None)
    secret["data"] = data


def with_broker(documents: list[dict[str, Any]], amqp_url: str, management_url: str) -> list[dict[str, Any]]:
    """The rendered overlay with each broker Secret's placeholder replaced by these URIs.

    The Django signing key gets a random value too, never the manifest's placeholder (as ``demo.deploy``).
    """
    names = broker_secrets(documents)
    for doc in documents:
        if doc.get("kind") != "Secret":
            continue
        if doc["metadata"]["name"] in names:
            _replace_data(doc, secret_data(amqp_url, management_url))
        elif doc["metadata"]["name"] == DJANGO_SECRET:
            _replace_data(doc, {"secretKey": base64.b64encode(secrets.token_urlsafe(50).encode()).decode()})
    return documents


def persistent_volumes(documents: list[dict[str, Any]], root: Path) -> list[dict[str, Any]]:
    """A hostPath PersistentVolume under ``root`` for each claim in ``documents``, bound to that claim."""
    volumes = []
    for doc in documents:
        if doc.get("kind") != "PersistentVolumeClaim":
            continue
        namespace, claim = doc["metadata"].get("namespace", "default"), doc["metadata"]["name"]
        volumes.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"{namespace}-{claim}"},
                "spec": {
                    "capacity": doc["spec"]["resources"]["requests"],
                    "accessModes": doc["spec"]["accessModes"],
                    "storageClassName": "",
                    "claimRef": {"namespace": namespace, "name": claim},
                    "hostPath": {"path": str(root / namespace / claim), "type": "DirectoryOrCreate"},
                },
            }
        )
    return volumes


def make_volume_directory(path: Path) -> None:
    """A hostPath volume's directory, writable by the pods' non-root user.

    The kubelet applies ``fsGroup`` to no hostPath volume, and ``DirectoryOrCreate`` would make the
    directory root's, mode 0755: the services (user 10001) could not create their SQLite file. kind's
    local-path provisioner makes its directories 0777 for the same reason.
    """
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)


def apply_overlay(
    kubeconfig: Path, overlay: Path, rendered: Path, amqp_url: str, management_url: str, volumes: Path
) -> None:
    documents = [d for d in yaml.safe_load_all(operators.kubectl(kubeconfig, "kustomize", str(overlay))) if d]
    claimed = persistent_volumes(documents, volumes)
    for volume in claimed:
        make_volume_directory(Path(volume["spec"]["hostPath"]["path"]))
    documents = with_broker(documents, amqp_url, management_url) + claimed
    rendered.write_text(yaml.safe_dump_all(documents))
    operators.kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(rendered))


def settled(pods: list[dict[str, Any]], services: tuple[str, ...]) -> bool:
    """Each service has exactly one live pod, Running, every container ready, the sidecar in its spec."""
    for service in services:
        mine = [
            p
            for p in pods
            if p["metadata"].get("labels", {}).get("app.kubernetes.io/name") == service
            and not p["metadata"].get("deletionTimestamp")
        ]
        if len(mine) != 1:
            return False
        pod = mine[0]
        statuses = pod["status"].get("containerStatuses", [])
        names = [c["name"] for c in pod["spec"]["containers"]]
        # The sidecar is a native one (an init container with restartPolicy Always): running, not "ready".
        sidecars = [c["name"] for c in pod["spec"].get("initContainers", []) if c["name"] == SIDECAR]
        if pod["status"].get("phase") != "Running" or not sidecars:
            return False
        if len(statuses) != len(names) or not all(s.get("ready") for s in statuses):
            return False
        inits = pod["status"].get("initContainerStatuses", [])
        if not any(s["name"] == SIDECAR and s.get("started") for s in inits):
            return False
    return True


def pods(kubeconfig: Path, namespace: str) -> list[dict[str, Any]]:
    listed = json.loads(operators.kubectl(kubeconfig, "get", "pods", "-n", namespace, "-o", "json"))
    items: list[dict[str, Any]] = listed["items"]
    return items


def expose(kubeconfig: Path, node: Node, namespace: str, services: tuple[str, ...], log_file: Path) -> dict[str, str]:
    """Start a forwarder from 127.0.0.1 ports to the services' ClusterIPs; return their base URLs."""
    rules, urls = [], {}
    for service in services:
        spec = json.loads(operators.kubectl(kubeconfig, "get", "service", service, "-n", namespace, "-o", "json"))[
            "spec"
        ]
        port = processes.free_port()
        target = forward.Endpoint(node.network.netns, spec["clusterIP"], int(spec["ports"][0]["port"]))
        rules.append(str(forward.Rule(forward.Endpoint(None, "127.0.0.1", port), target)))
        urls[service] = f"http://127.0.0.1:{port}"
    record = processes.spawn(
        "service-forwarder",
        [sys.executable, "-m", "harness.forward", *rules],
        log_file,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    # In the node's cgroup: the node's teardown stops it with everything else.
    cgroups.add(f"{node.cgroup}/system", record.pid)
    return urls


def kill_container(node: Node, container_id: str) -> None:
    """SIGKILL a container's process through the node's containerd (``containerd://<id>`` from a pod status)."""
    runtime = containerd.Paths(Path(node.directory) / "containerd")
    containerd.ctr(runtime, "tasks", "kill", "--signal", "SIGKILL", container_id.removeprefix("containerd://"))


def get_json(node: Node, url: str) -> Any:
    """GET ``url`` from inside the node's network (a pod IP the host has no route to); the JSON body."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port or 80
    sock = forward.in_netns(node.network.netns, lambda: socket.create_connection((host, port), timeout=10))
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.sock = sock
    try:
        connection.request("GET", urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, "")))
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise OSError(f"GET {url}: HTTP {response.status}")
        return json.loads(body)
    finally:
        connection.close()
