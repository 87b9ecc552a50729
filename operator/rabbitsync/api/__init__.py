"""The resource models (group ``rabbitsync.io``, version ``v1alpha1``): single source of truth for the CRDs.

Pure data: no Kubernetes client, no broker library. The controller parses objects with these models and
``rabbitsync.api.crd`` generates ``crds/`` from them.
"""

from rabbitsync.api.clustersyncbroker import ClusterSyncBrokerSpec
from rabbitsync.api.conditions import (
    BROKER_REACHABLE,
    READY,
    SIDECAR_INJECTED,
    TOPOLOGY_SYNCED,
    Condition,
    ConditionStatus,
    format_time,
    get_condition,
    set_condition,
)
from rabbitsync.api.meta import API_VERSION, GROUP, VERSION
from rabbitsync.api.syncbroker import (
    CASecretRef,
    SecretRef,
    SyncBroker,
    SyncBrokerSpec,
    SyncBrokerStatus,
    TLSSpec,
)
from rabbitsync.api.syncpublication import SyncPublication, SyncPublicationSpec, SyncPublicationStatus
from rabbitsync.api.syncsubscription import (
    DeletionPolicy,
    QueueType,
    RetryPolicy,
    SyncSubscription,
    SyncSubscriptionSpec,
    SyncSubscriptionStatus,
)

__all__ = [
    "API_VERSION",
    "BROKER_REACHABLE",
    "GROUP",
    "READY",
    "SIDECAR_INJECTED",
    "TOPOLOGY_SYNCED",
    "VERSION",
    "CASecretRef",
    "ClusterSyncBrokerSpec",
    "Condition",
    "ConditionStatus",
    "DeletionPolicy",
    "QueueType",
    "RetryPolicy",
    "SecretRef",
    "SyncBroker",
    "SyncBrokerSpec",
    "SyncBrokerStatus",
    "SyncPublication",
    "SyncPublicationSpec",
    "SyncPublicationStatus",
    "SyncSubscription",
    "SyncSubscriptionSpec",
    "SyncSubscriptionStatus",
    "TLSSpec",
    "format_time",
    "get_condition",
    "set_condition",
]
