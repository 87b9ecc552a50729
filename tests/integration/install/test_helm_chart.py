"""The Helm chart: lint-clean, rendering the rules of manifests/, and installed against a real API server.

``helm`` is built from ``helm.sh/helm/v3/cmd/helm`` by the harness (``binaries.ensure_helm``, cached like
the control plane). The chart's cluster-scoped names come from the release name, so the test's release
never collides with what the harness applied from ``manifests/rbac``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from harness import binaries
from rabbitsync.api import crd

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "rabbitsync"


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    exe = binaries.ensure_helm()
    home = tmp_path_factory.mktemp("helm-home")
    # A HOME of its own too: client-go keeps its discovery cache under $HOME/.kube.
    env = {"HOME": str(home), **{f"HELM_{kind}_HOME": str(home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")}}

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(exe), *args], capture_output=True, text=True, timeout=180, env={"PATH": "/usr/bin:/bin", **env}
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    yield run


def _render(helm: Any, *args: str) -> list[dict[str, Any]]:
    out = helm("template", "rabbitsync", str(CHART), "-n", "rabbitsync-system", "--include-crds", *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _kustomize(directory: str) -> list[dict[str, Any]]:
    kubectl = binaries.ensure_binaries().kubectl
    rendered = subprocess.run(
        [str(kubectl), "kustomize", str(ROOT / "manifests" / directory)], capture_output=True, text=True, check=True
    )
    return [d for d in yaml.safe_load_all(rendered.stdout) if d]


def _squashed(value: Any) -> Any:
    """``value`` with every string's whitespace runs made one space: kustomize re-emits the policy's folded
    CEL expressions with extra blank lines, which CEL ignores."""
    if isinstance(value, dict):
        return {k: _squashed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_squashed(v) for v in value]
    return " ".join(value.split()) if isinstance(value, str) else value


def _by_kind_and_name(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_the_chart_is_lint_clean(helm: Any) -> None:
    out = helm("lint", "--strict", str(CHART), "--set", "clusterName=east")
    assert "0 chart(s) failed" in out.stdout


def test_the_chart_renders_what_the_manifests_hold(helm: Any) -> None:
    chart = _by_kind_and_name(_render(helm, "--set", "clusterName=east"))
    kustomize = _by_kind_and_name(_kustomize("operator"))
    # Same CRDs (the generated files), same names, same rights: the reasons are written in manifests/rbac.
    assert {k for k in chart if k[0] == "CustomResourceDefinition"} == {
        ("CustomResourceDefinition", c["metadata"]["name"]) for c in crd.all_crds()
    }
    cluster_scoped = {
        k for k in kustomize if k[0] in ("ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy")
    }
    assert cluster_scoped <= set(chart)
    for key in cluster_scoped:
        for field in ("rules", "roleRef", "subjects", "spec"):
            assert _squashed(chart[key].get(field)) == _squashed(kustomize[key].get(field)), (key, field)
    deployment = chart["Deployment", "rabbitsync-operator"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "rabbitsync:0.1.0"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RABBITSYNC_CLUSTER"] == "east" and env["RABBITSYNC_METRICS_PORT"] == "9090"
    assert {p["name"] for p in container["ports"]} == {"health", "metrics"}
    [expected] = kustomize["Deployment", "rabbitsync-operator"]["spec"]["template"]["spec"]["containers"]
    assert container["securityContext"] == expected["securityContext"]


def test_the_chart_needs_a_cluster_name(helm: Any) -> None:
    proc = helm("template", "rabbitsync", str(CHART), check=False)
    assert proc.returncode != 0 and "clusterName is required" in proc.stderr


def test_the_chart_installs_and_uninstalls_on_a_real_api_server(helm: Any, clusters, namespace: str, uid: str) -> None:  # type: ignore[no-untyped-def]
    east = clusters["east"]
    release = f"rs-{uid}"
    kubeconfig = ("--kubeconfig", str(east.kubeconfig), "-n", namespace)
    helm(
        "install", release, str(CHART), *kubeconfig, "--set", f"clusterName=helm-{uid}",
        "--set", "clusterSyncBroker.create=true", "--set", f"clusterSyncBroker.name=helm-{uid}",
        "--set", "clusterSyncBroker.uri=amqp://u:p@broker.example:5672/%2F",
        "--set", f"clusterSyncBroker.allowedNamespaces={{{namespace}}}",
    )  # fmt: skip
    try:
        apps, rbac = client.AppsV1Api(east.api), client.RbacAuthorizationV1Api(east.api)
        deployment = apps.read_namespaced_deployment(f"{release}-operator", namespace)
        assert deployment.spec.template.spec.service_account_name == f"{release}-operator"
        east.core.read_namespaced_service_account(f"{release}-operator", namespace)
        role = rbac.read_cluster_role(f"{release}-operator")
        assert any("deployments" in (r.resources or []) for r in role.rules)
        binding = rbac.read_cluster_role_binding(f"{release}-operator")
        assert (binding.subjects[0].name, binding.subjects[0].namespace) == (f"{release}-operator", namespace)
        policy = client.AdmissionregistrationV1Api(east.api).read_validating_admission_policy(
            f"{release}-operator-secrets"
        )
        assert f"system:serviceaccount:{namespace}:{release}-operator" in policy.spec.match_conditions[0].expression
        broker = client.CustomObjectsApi(east.api).get_cluster_custom_object(
            "rabbitsync.io", "v1alpha1", "clustersyncbrokers", f"helm-{uid}"
        )
        assert broker["spec"]["allowedNamespaces"] == [namespace]
        assert east.core.read_namespaced_secret("rabbitsync-broker-admin", namespace).data["uri"]
        status = helm("status", release, *kubeconfig).stdout
        assert "STATUS: deployed" in status
    finally:
        helm("uninstall", release, *kubeconfig, "--wait")
    with pytest.raises(client.ApiException) as gone:
        client.RbacAuthorizationV1Api(east.api).read_cluster_role(f"{release}-operator")
    assert gone.value.status == 404
    # Helm never deletes CRDs: every custom resource of every release survives an uninstall.
    extensions = client.ApiextensionsV1Api(east.api)
    for definition in crd.all_crds():
        extensions.read_custom_resource_definition(definition["metadata"]["name"])
