"""The harness gives two real, independent API servers with RBAC."""

from __future__ import annotations

import subprocess
import time

from kubernetes import client
from kubernetes.client.rest import ApiException

GROUP = "harness.rabbitsync.io"


def _crd(uid: str) -> dict[str, object]:
    plural = f"widgets{uid}"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": f"widget{uid}", "kind": f"Widget{uid.upper()}"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}},
                        }
                    },
                }
            ],
        },
    }


def _established(ext: client.ApiextensionsV1Api, name: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        crd = ext.read_custom_resource_definition(name)
        conditions = crd.status.conditions or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return True
        time.sleep(0.2)
    return False


def test_crd_in_both_clusters_and_objects_are_independent(clusters, namespace, uid):
    crd = _crd(uid)
    name = crd["metadata"]["name"]  # type: ignore[index]
    plural = f"widgets{uid}"
    for handle in clusters.values():
        ext = client.ApiextensionsV1Api(handle.api)
        ext.create_custom_resource_definition(crd)
        assert _established(ext, name), f"CRD not Established in {handle.name}"
    try:
        east = client.CustomObjectsApi(clusters["east"].api)
        west = client.CustomObjectsApi(clusters["west"].api)
        body = {"apiVersion": f"{GROUP}/v1", "kind": f"Widget{uid.upper()}", "metadata": {"name": "only-east"}}
        east.create_namespaced_custom_object(GROUP, "v1", namespace, plural, body)
        assert east.get_namespaced_custom_object(GROUP, "v1", namespace, plural, "only-east")
        try:
            west.get_namespaced_custom_object(GROUP, "v1", namespace, plural, "only-east")
            raise AssertionError("an object created in east is visible in west")
        except ApiException as e:
            assert e.status == 404
    finally:
        for handle in clusters.values():
            client.ApiextensionsV1Api(handle.api).delete_custom_resource_definition(name)


def test_kubeconfig_works_with_kubectl_and_version_is_honest(clusters):
    for handle in clusters.values():
        out = subprocess.run(
            ["kubectl", "--kubeconfig", str(handle.kubeconfig), "get", "--raw", "/version"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert '"gitVersion": "v1.35.4"' in out


def test_rbac_is_enforced(clusters, namespace):
    """A service account with no role is refused: authorization really is RBAC, not AlwaysAllow."""
    handle = clusters["east"]
    core = handle.core
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody"))
    )
    token = core.create_namespaced_service_account_token(
        "nobody", namespace, client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    ).status.token
    cfg = client.Configuration()
    cfg.host = handle.server
    cfg.ssl_ca_cert = handle.api.configuration.ssl_ca_cert
    cfg.api_key = {"authorization": f"Bearer {token}"}
    with client.ApiClient(cfg) as api:
        try:
            client.CoreV1Api(api).list_namespaced_secret(namespace)
            raise AssertionError("an unprivileged service account could list secrets")
        except ApiException as e:
            assert e.status == 403


def test_controller_manager_finishes_namespace_deletion(clusters, uid):
    core = clusters["west"].core
    name = f"gone-{uid}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_config_map(name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x")))
    core.delete_namespace(name)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            core.read_namespace(name)
        except ApiException as e:
            assert e.status == 404
            return
        time.sleep(0.5)
    raise AssertionError("namespace stuck in Terminating: kube-controller-manager is not doing its job")
