"""The example manifests render, agree with each other, and agree with the services' code.

Built with the pinned kubectl the harness builds (``kubectl kustomize``); skipped without it.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import binaries
from rabbitsync.api.clustersyncbroker import ClusterSyncBrokerSpec
from rabbitsync.api.syncbroker import SyncBrokerSpec
from rabbitsync.api.syncpublication import SyncPublicationSpec
from rabbitsync.api.syncsubscription import SyncSubscriptionSpec

ROOT = Path(__file__).resolve().parents[3]
MANIFESTS = ROOT / "manifests"
SERVICES = {"restaurant": "restaurant", "restaurant-menu": "restaurant_menu", "order": "order"}
OWN_EVENTS = {"restaurant": "RESTAURANT_", "restaurant-menu": "MENU_ITEM_", "order": "ORDER_"}


def kubectl() -> Path:
    version = f"k8s-{binaries.KUBERNETES_VERSION}-etcd-{binaries.ETCD_VERSION}"
    built = binaries.cache_root() / version / "bin" / "kubectl"
    if built.exists():
        return built
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("no kubectl: run `make controlplane` (it builds the pinned one)")
    return Path(found)


def render(directory: str) -> list[dict]:
    out = subprocess.run(
        [str(kubectl()), "kustomize", str(MANIFESTS / directory)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def of_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def env_of(container: dict) -> dict[str, object]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def handled_events(service: str) -> set[str]:
    """Event types registered by ``@handler(*NAMES)`` in the service's rabbitsync_handlers.py (read, not run)."""
    import sys

    sys.path.insert(0, str(ROOT / "services"))
    try:
        from common import events
    finally:
        sys.path.remove(str(ROOT / "services"))
    tree = ast.parse((ROOT / "services" / service / SERVICES[service] / "rabbitsync_handlers.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "handler":
            for arg in node.args:
                target = arg.value if isinstance(arg, ast.Starred) else arg
                value = getattr(events, target.id) if isinstance(target, ast.Name) else target.value
                found |= {value} if isinstance(value, str) else set(value)
    return found


@pytest.mark.parametrize("cluster", ["east", "west"])
def test_overlay_renders_operator_broker_and_services_for_its_cluster(cluster):
    docs = render(f"overlays/{cluster}")
    deployments = of_kind(docs, "Deployment")
    assert set(deployments) == {"rabbitsync-operator", *SERVICES}
    for deployment in deployments.values():
        assert env_of(deployment["spec"]["template"]["spec"]["containers"][0])["RABBITSYNC_CLUSTER"] == cluster
    assert set(of_kind(docs, "CustomResourceDefinition")) == {
        "syncbrokers.rabbitsync.io",
        "syncsubscriptions.rabbitsync.io",
        "syncpublications.rabbitsync.io",
        "clustersyncbrokers.rabbitsync.io",
    }
    assert set(of_kind(docs, "Namespace")) == {"rabbitsync-system", "foodapp"}


def test_services_are_wired_to_their_own_secret_their_code_and_their_declarations():
    docs = render("overlays/east")
    secrets, brokers = of_kind(docs, "Secret"), of_kind(docs, "ClusterSyncBroker")
    subscriptions = of_kind(docs, "SyncSubscription")
    publications = of_kind(docs, "SyncPublication")
    broker = ClusterSyncBrokerSpec.model_validate(brokers["default"]["spec"])
    # The admin credential lives in the operator's namespace; nothing in foodapp holds it.
    admin = secrets[broker.secret_ref.name]
    assert admin["metadata"]["namespace"] == "rabbitsync-system" and "uri" in admin["stringData"]
    assert not of_kind(docs, "SyncBroker") and broker.allowed_namespaces == ["foodapp"]
    in_foodapp = [d for d in docs if d["kind"] == "Secret" and d["metadata"].get("namespace") == "foodapp"]
    assert [d["metadata"]["name"] for d in in_foodapp] == ["foodapp-django"], "no broker credential in foodapp"
    assert set(subscriptions) == set(publications) == set(SERVICES)
    for name, package in SERVICES.items():
        deployment = of_kind(docs, "Deployment")[name]
        assert deployment["metadata"]["namespace"] == "foodapp"
        assert deployment["metadata"]["annotations"]["rabbitsync.io/inject"] == "true"
        pod = deployment["spec"]["template"]["spec"]
        [app] = pod["containers"]
        env = env_of(app)
        assert env["RABBITSYNC_SERVICE"] == name  # the operator gives the sidecar this identity
        assert env["RABBITSYNC_AMQP_URL"] == {"secretKeyRef": {"name": f"rabbitsync-{name}", "key": "uri"}}
        assert env["RABBITSYNC_CA_PEM"] == {"secretKeyRef": {"name": f"rabbitsync-{name}", "key": "ca.crt"}}
        assert env["RABBITSYNC_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
        assert app["workingDir"] == f"/app/services/{name}"
        assert (ROOT / "services" / name / "manage.py").exists()
        assert (ROOT / "services" / name / package / "settings.py").exists()
        # Served by gunicorn (issue 11), configured and sized from the environment by common/serving.py.
        assert app["command"] == [
            "python",
            "-m",
            "gunicorn",
            "--config",
            "python:common.serving",
            f"{package}.wsgi:application",
        ]
        assert (ROOT / "services" / name / package / "wsgi.py").exists()
        assert int(env["WEB_CONCURRENCY"]) >= 1 and int(env["WEB_THREADS"]) >= 1
        [migrate] = pod["initContainers"]
        assert (migrate["command"], migrate["workingDir"]) == (
            ["python", "manage.py", "migrate", "--noinput"],
            app["workingDir"],
        )
        assert env_of(migrate)["SQLITE_PATH"] == env["SQLITE_PATH"]
        mounts = {m["mountPath"]: m["name"] for m in app["volumeMounts"]}
        assert str(Path(env["SQLITE_PATH"]).parent) in mounts
        assert {v["name"] for v in pod["volumes"]} >= set(mounts.values())
        service = of_kind(docs, "Service")[name]
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]

        spec = SyncSubscriptionSpec.model_validate(subscriptions[name]["spec"])
        assert spec.service == name and spec.broker == "default"
        # Every subscribed type has a handler (else it would be dead-lettered), and each service
        # subscribes to its own entity's events, for the twin in the other cluster.
        assert set(spec.events) <= handled_events(name), name
        assert any(e.startswith(OWN_EVENTS[name]) for e in spec.events)
        published = SyncPublicationSpec.model_validate(publications[name]["spec"])
        assert published.service == name and all(e.startswith(OWN_EVENTS[name]) for e in published.events)
    assert {e for e in subscriptions["restaurant-menu"]["spec"]["events"] if e.startswith("RESTAURANT_")} == {
        "RESTAURANT_CREATED",
        "RESTAURANT_UPDATED",
        "RESTAURANT_DELETED",
    }
    order_events = set(subscriptions["order"]["spec"]["events"])
    assert {"RESTAURANT_DELETED", "MENU_ITEM_UPDATED", "ORDER_CREATED"} <= order_events


def test_in_cluster_broker_variant_points_the_secret_at_its_rabbitmq():
    docs = render("broker/in-cluster")
    uri = of_kind(docs, "Secret")["rabbitsync-broker-admin"]["stringData"]["uri"]
    assert uri.startswith("amqp://") and "@rabbitmq.foodapp.svc:5672/" in uri
    rabbit = of_kind(docs, "StatefulSet")["rabbitmq"]
    assert "management" in rabbit["spec"]["template"]["spec"]["containers"][0]["image"]
    ports = {p["name"] for p in of_kind(docs, "Service")["rabbitmq"]["spec"]["ports"]}
    assert ports == {"amqp", "management"}
    assert "default" in of_kind(docs, "ClusterSyncBroker")


def test_samples_are_valid_resources():
    broker_docs = [d for d in yaml.safe_load_all((MANIFESTS / "samples" / "syncbroker.yaml").read_text()) if d]
    secret, broker = of_kind(broker_docs, "Secret"), of_kind(broker_docs, "SyncBroker")["default"]
    assert SyncBrokerSpec.model_validate(broker["spec"]).secret_ref.name in secret
    [subscription] = yaml.safe_load_all((MANIFESTS / "samples" / "syncsubscription.yaml").read_text())
    spec = SyncSubscriptionSpec.model_validate(subscription["spec"])
    assert spec.events == ["RESTAURANT_CREATED", "RESTAURANT_UPDATED", "RESTAURANT_DELETED"]
