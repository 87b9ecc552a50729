"""A fourth service that subscribes after the data exists: ``delivery``, a backfill's new subscriber.

``delivery`` is the restaurant-menu code run as a Deployment, broker user and database of its own
(the live Deployment of restaurant-menu, overlay applied, renamed, without the sidecar the operator
injected there), with a SyncSubscription to the restaurant events asking ``backfill: onCreate``. The
demo adds it after restaurants exist and shows it converge; the e2e backfill tests build on it.
Pod runner only: on real nodes its volume would need a PersistentVolumeClaim of its own.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from harness import operators, podrunner, processes

NAME = "delivery"
NAMESPACE = "foodapp"
EVENTS = ["RESTAURANT_CREATED", "RESTAURANT_UPDATED", "RESTAURANT_DELETED"]
TEMPLATE_SERVICE = "restaurant-menu"
TABLE = "restaurant_menu_restaurant"
"""Where the delivery copy keeps restaurants: restaurant-menu's table, in delivery's own database."""


def deployment(kubeconfig: Path) -> dict[str, Any]:
    """restaurant-menu's live Deployment as the new service ``delivery``, its injected sidecar removed."""
    source = json.loads(
        operators.kubectl(kubeconfig, "get", "deployment", TEMPLATE_SERVICE, "-n", NAMESPACE, "-o", "json")
    )
    template = source["spec"]["template"]
    template["spec"]["initContainers"] = [
        c for c in template["spec"].get("initContainers", []) if c["name"] != "rabbitsync-sidecar"
    ]
    template["metadata"]["annotations"] = {
        k: v for k, v in (template["metadata"].get("annotations") or {}).items() if not k.startswith("rabbitsync.io/")
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "annotations": {"rabbitsync.io/inject": "true"}},
        "spec": _renamed(source["spec"]),
    }


def subscription(backfill: str = "onCreate") -> dict[str, Any]:
    return {
        "apiVersion": "rabbitsync.io/v1alpha1",
        "kind": "SyncSubscription",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {"service": NAME, "events": EVENTS, "backfill": backfill},
    }


def add(directory: Path, cluster: str, kubeconfig: Path) -> None:
    """Create the Deployment and its SyncSubscription in ``cluster``."""
    for manifest in (deployment(kubeconfig), subscription()):
        path = directory / f"{NAME}-{cluster}-{manifest['kind'].lower()}.json"
        path.write_text(json.dumps(manifest))
        operators.kubectl(kubeconfig, "apply", "-f", str(path))


def remove(kubeconfig: Path) -> None:
    for kind in ("syncsubscription", "deployment"):
        operators.kubectl(kubeconfig, "delete", kind, NAME, "-n", NAMESPACE, "--ignore-not-found")


def backfill_status(kubeconfig: Path, name: str = NAME) -> dict[str, Any]:
    found = json.loads(operators.kubectl(kubeconfig, "get", "syncsubscription", name, "-n", NAMESPACE, "-o", "json"))
    return dict((found.get("status") or {}).get("backfill") or {})


def database(directory: Path, cluster: str, service: str = NAME) -> Path:
    """The SQLite file of ``service`` under the pod runner's claims (the manifests' ``<service>-data``)."""
    return directory / "pods" / cluster / NAMESPACE / "claims" / f"{service}-data" / f"{service}.sqlite3"


def url(directory: Path, cluster: str, service: str = NAME) -> str | None:
    pod = podrunner.status(directory, cluster, NAMESPACE).get(service)
    if not pod:
        return None
    ports = [port for key, port in pod["ports"].items() if not key.startswith("rabbitsync-sidecar/")]
    return f"http://{pod['ip']}:{ports[0]}" if ports else None


def wait_complete(kubeconfig: Path, timeout: float, name: str = NAME, trigger: str | None = None) -> dict[str, Any]:
    """The subscription's backfill once Complete (of ``trigger`` if given); TimeoutError otherwise."""
    found: dict[str, Any] = {}

    def done() -> bool:
        found.update(backfill_status(kubeconfig, name))
        return found.get("phase") == "Complete" and trigger in (None, found.get("trigger"))

    started = time.monotonic()
    processes.wait_until(done, timeout, f"the backfill of {NAMESPACE}/{name}")
    found["seconds"] = round(time.monotonic() - started, 1)
    return found


def _renamed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _renamed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v) for v in value]
    if value == TEMPLATE_SERVICE:
        return NAME
    if isinstance(value, str):
        # The service's Secret, database file and volume claim; its code (workingDir, modules) stays.
        for old in (f"rabbitsync-{TEMPLATE_SERVICE}", f"{TEMPLATE_SERVICE}.sqlite3", f"{TEMPLATE_SERVICE}-data"):
            value = value.replace(old, old.replace(TEMPLATE_SERVICE, NAME))
    return value


def restaurants(base_url: str) -> set[tuple[Any, ...]]:
    """Every restaurant a service holds (tombstones too) as (id, name, deleted, version)."""
    from harness import demo

    return {(r["id"], r["name"], r["deleted"], r["version"]) for r in demo.restaurants(base_url)}


def story(directory: Path, kubeconfigs: dict[str, Path], urls: dict[str, dict[str, str]], say: Any) -> None:
    """``make demo``'s backfill step: ``delivery`` subscribes after the data exists and converges."""
    say("\n==> backfill: a new service, delivery, subscribes to restaurants after they exist (backfill: onCreate)")
    for cluster, kubeconfig in kubeconfigs.items():
        add(directory, cluster, kubeconfig)
    for cluster, kubeconfig in kubeconfigs.items():
        done = wait_complete(kubeconfig, 300)
        processes.wait_until(lambda c=cluster: url(directory, c) is not None, 120, f"{cluster}/delivery running")
        source, copy = restaurants(urls[cluster]["restaurant"]), restaurants(str(url(directory, cluster)))
        publishers = ", ".join(r["publisher"] for r in done["requests"])
        say(
            f"    {cluster}/delivery: backfill {done['phase']} after {done['seconds']}s, {done['applied']} of "
            f"{done['sent']} snapshot events applied (from {publishers}); it holds {len(copy)} restaurants, "
            f"{'the same as' if copy == source else 'NOT the same as'} {cluster}/restaurant"
        )
