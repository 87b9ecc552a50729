"""ClusterSyncBroker: the shared broker for many namespaces, its admin credential kept in the operator's namespace.

A namespaced SyncBroker needs the broker's admin Secret in the tenant's namespace, where every pod and
anyone who may read Secrets there can take it. A ClusterSyncBroker names a Secret in the operator's own
namespace and lists the namespaces allowed to use it; tenants only ever receive their services' own
credentials (``rabbitsync-<service>``). A namespace's SyncBroker of the same name, if any, wins.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from rabbitsync.api.conditions import ready_columns
from rabbitsync.api.meta import AGE_COLUMN, DNS1123_LABEL, PrinterColumn, ResourceInfo
from rabbitsync.api.syncbroker import SecretRef, SyncBrokerSpec, TLSSpec

MAX_NAMESPACES = 256

DEFAULT_OPERATOR_NAMESPACE = "rabbitsync-system"
"""Where the operator runs unless ``RABBITSYNC_OPERATOR_NAMESPACE`` says otherwise: ClusterSyncBrokers' Secrets."""

Namespace = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS1123_LABEL)]


class ClusterSyncBrokerSpec(SyncBrokerSpec):
    """Where the shared broker is, which exchange carries the events, and who may use it."""

    secret_ref: SecretRef = Field(
        description="Secret in the operator's namespace (rabbitsync-system) holding the broker's admin URIs."
    )
    tls: TLSSpec | None = Field(
        default=None, description="Optional TLS settings; the CA Secret lives in the operator's namespace too."
    )
    allowed_namespaces: list[Namespace] = Field(
        default_factory=list,
        max_length=MAX_NAMESPACES,
        description=(
            "Namespaces whose SyncSubscriptions and SyncPublications may use this broker. Others get "
            "Ready=False with reason NamespaceNotAllowed; empty allows none."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


def allows(spec: ClusterSyncBrokerSpec, namespace: str) -> bool:
    return namespace in spec.allowed_namespaces


RESOURCE = ResourceInfo(
    kind="ClusterSyncBroker",
    plural="clustersyncbrokers",
    short_names=("csbroker", "csbrokers"),
    description=(
        "ClusterSyncBroker says how to reach the RabbitMQ broker shared by all clusters for the namespaces "
        "it allows, with its admin Secret in the operator's namespace. SyncSubscriptions and SyncPublications "
        "name it in spec.broker when their namespace has no SyncBroker of that name."
    ),
    printer_columns=(
        PrinterColumn("Exchange", "string", ".spec.exchange", "Topic exchange carrying the events."),
        PrinterColumn("Namespaces", "string", ".spec.allowedNamespaces", "Namespaces allowed to use it."),
        *ready_columns("Broker reachable."),
        AGE_COLUMN,
    ),
    scope="Cluster",
)
