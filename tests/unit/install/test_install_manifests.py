"""Install traps closed: the image set in one place, the CRD folder appliable as is, the dashboard's metrics real.

Built with the pinned kubectl the harness builds (``kubectl kustomize``); skipped without it.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import binaries

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
MANIFESTS = ROOT / "manifests"
MONITORING = MANIFESTS / "monitoring"


def _kustomize(directory: str) -> list[dict[str, Any]]:
    kubectl = (
        binaries.cache_root() / f"k8s-{binaries.KUBERNETES_VERSION}-etcd-{binaries.ETCD_VERSION}" / "bin" / "kubectl"
    )
    if not kubectl.exists():
        pytest.skip("no kubectl: run `make controlplane` (it builds the pinned one)")
    out = subprocess.run([str(kubectl), "kustomize", str(MANIFESTS / directory)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for doc in docs:
        if doc["kind"] == "Deployment":
            spec = doc["spec"]["template"]["spec"]
            found += spec.get("initContainers", []) + spec["containers"]
    return found


def test_the_image_is_set_in_one_place() -> None:
    tagged = [p for p in MANIFESTS.rglob("*.yaml") if re.search(r"image: +rabbitsync:", p.read_text())]
    assert tagged == [], "only manifests/image sets the tag; Deployments say `image: rabbitsync`"
    assert "newTag: 0.1.0" in (MANIFESTS / "image" / "kustomization.yaml").read_text()


@pytest.mark.parametrize("directory", ["operator", "services", "overlays/east", "overlays/west"])
def test_every_container_gets_the_image_from_the_component(directory: str) -> None:
    images = {c["image"] for c in _containers(_kustomize(directory))}
    assert images == {"rabbitsync:0.1.0"}


def test_the_operator_base_alone_carries_a_placeholder_the_operator_refuses() -> None:
    from rabbitsync.operator.settings import PLACEHOLDER_CLUSTERS

    [operator] = [c for c in _containers(_kustomize("operator")) if c["name"] == "operator"]
    assert operator["env"][0] == {"name": "RABBITSYNC_CLUSTER", "value": "set-by-overlay"}
    assert "set-by-overlay" in PLACEHOLDER_CLUSTERS
    assert {"name": "metrics", "containerPort": 9090} in operator["ports"]


def test_the_crd_folder_is_also_a_kustomize_base() -> None:
    kinds = [d["kind"] for d in _kustomize("../crds")]
    assert kinds == ["CustomResourceDefinition"] * 4


def _defined_metrics() -> set[str]:
    names: set[str] = set()
    for module in ("sidecar/metrics.py", "operator/metrics.py", "django/metrics.py"):
        names |= set(re.findall(r'"(rabbitsync_[a-z_]+)"', (ROOT / "operator" / "rabbitsync" / module).read_text()))
    return names


def test_the_dashboard_queries_only_metrics_that_exist() -> None:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {re.sub(r"_(total|bucket|count|sum)$", "", m) for e in exprs for m in re.findall(r"rabbitsync_[a-z_]+", e)}
    assert used - _defined_metrics() == set()
    broker = {m for e in exprs for m in re.findall(r"rabbitmq_[a-z_]+", e)}
    assert broker == {"rabbitmq_detailed_queue_messages"}
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("lag", "applied", "retries", "dead-letter", "unroutable"):
        assert topic in titles


def test_the_scrape_configuration_finds_every_process() -> None:
    jobs = {job["job_name"]: job for job in yaml.safe_load((MONITORING / "prometheus-scrape.yaml").read_text())}
    assert set(jobs) == {"rabbitsync-operator", "rabbitsync-sidecar", "rabbitsync-web", "rabbitmq"}
    keep = jobs["rabbitsync-sidecar"]["relabel_configs"][0]
    assert keep["regex"] == "rabbitsync-sidecar;rs-http"
    assert {d["kind"] for d in _kustomize("monitoring")} == {"ConfigMap"}
