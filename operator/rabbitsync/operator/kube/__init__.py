"""The operator's Kubernetes port: a small protocol, its errors, the kopf-backed implementation and a fake.

Only ``kube.api`` imports the Kubernetes client; everything above it sees ``Cluster`` and ``KubeError``.
"""

from rabbitsync.operator.kube.errors import Conflict, Forbidden, Invalid, KubeError, NotFound, Unavailable
from rabbitsync.operator.kube.port import (
    Cluster,
    LivePublication,
    LiveSubscription,
    ObjectRef,
    SecretWrite,
    StoredSecret,
)

__all__ = [
    "Cluster",
    "Conflict",
    "Forbidden",
    "Invalid",
    "KubeError",
    "LivePublication",
    "LiveSubscription",
    "NotFound",
    "ObjectRef",
    "SecretWrite",
    "StoredSecret",
    "Unavailable",
]
