"""What RBAC denies becomes a condition naming it, like a missing object; it never crashes a handler
or blocks a deletion. Runs the plain reconcile/cleanup functions as a ServiceAccount that may read
SyncBrokers (and Deployments) but not Secrets; the operator's own ClusterRole allows both, so the
operator process cannot show it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client, config
from opkit import Kit

from harness import operators
from rabbitsync.amqp.rabbit import RabbitBroker
from rabbitsync.api.meta import GROUP, VERSION
from rabbitsync.operator.cleanup import cleanup
from rabbitsync.operator.kube import indexes
from rabbitsync.operator.kube.api import ApiCluster
from rabbitsync.operator.reconcile import reconcile
from rabbitsync.operator.references import ResolvedBroker
from rabbitsync.operator.settings import OperatorSettings
from rabbitsync.operator.subscription import Subscription

pytestmark = pytest.mark.integration


def _restricted_api(kit: Kit, tmp_path: Path) -> client.ApiClient:
    core = kit.core("east")
    core.create_namespaced_service_account(
        kit.namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="no-secrets"))
    )
    rbac = client.RbacAuthorizationV1Api(kit.clusters["east"].api)
    rbac.create_namespaced_role(
        kit.namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="no-secrets"),
            rules=[
                client.V1PolicyRule(api_groups=["rabbitsync.io"], resources=["syncbrokers"], verbs=["get"]),
                # The sidecar part of a reconcile, as the operator's ClusterRole has it.
                client.V1PolicyRule(api_groups=["apps"], resources=["deployments"], verbs=["get", "list", "patch"]),
            ],
        ),
    )
    rbac.create_namespaced_role_binding(
        kit.namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="no-secrets"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="no-secrets"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="no-secrets", namespace=kit.namespace)],
        ),
    )
    kubeconfig = operators.token_kubeconfig(
        kit.clusters["east"].kubeconfig, tmp_path / "no-secrets.kubeconfig", "10m", "no-secrets", kit.namespace
    )
    return config.new_client_from_config(config_file=str(kubeconfig))


def test_forbidden_secret_is_a_condition_and_does_not_block_deletion(kit: Kit, tmp_path: Path) -> None:
    kit.setup_broker("east")
    api = _restricted_api(kit, tmp_path)
    settings = OperatorSettings(cluster="east")
    sub = Subscription.from_body(
        kit.namespace, "orders", {"generation": 1}, {"service": "orders", "events": ["a.created"]}, {}
    )

    def factory(resolved: ResolvedBroker) -> RabbitBroker:
        return RabbitBroker(resolved.endpoint)

    # The SyncBroker as the operator's index holds it (kopf fills it from its watch; here, one GET).
    broker = kit.custom("east").get_namespaced_custom_object(GROUP, VERSION, kit.namespace, "syncbrokers", "default")
    index = {key: [entry] for key, entry in indexes.sync_brokers(broker).items()}
    cluster = ApiCluster(api, sync_brokers=index, subscriptions={})

    outcome = reconcile(sub, cluster, factory, settings)
    ready = next(c for c in outcome.status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SecretForbidden"), ready
    assert f"Secret {kit.namespace}/rabbitmq" in ready["message"] and "RBAC" in ready["message"], ready
    assert outcome.temporary_failure, "RBAC can be fixed without touching the subscription: retry"

    done = cleanup(sub, cluster, factory, settings, attempt=0)
    assert done.done
    assert [n.reason for n in done.notes][:1] == ["TopologyLeftBehind"], done.notes
