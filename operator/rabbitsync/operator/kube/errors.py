"""What the Kubernetes API refused, classified once: the port's own errors.

``ApiException``, connection errors, base64 and pydantic errors never leave the ``kube`` package:
callers see a ``KubeError`` that names the object, gives the condition ``reason`` (``<Kind><What>``,
e.g. ``SecretForbidden``) and says whether retrying can help (``permanent``), as
``rabbitsync.transport.errors`` does for the broker.
"""

from __future__ import annotations

from typing import ClassVar


class KubeError(Exception):
    """The API server refused a read or write of one object, or could not be asked."""

    permanent: ClassVar[bool] = True
    """Retrying without a change (of the object, a Secret, RBAC) gives the same answer."""
    suffix: ClassVar[str] = "Error"
    """The end of ``reason``, after the object's kind."""

    def __init__(self, kind: str, namespace: str, name: str, detail: str = "") -> None:
        self.kind, self.namespace, self.name, self.detail = kind, namespace, name, detail
        suffix = f": {detail}" if detail else ""
        # Cluster-scoped objects (ClusterSyncBroker) are named without a namespace.
        where = f"{namespace}/{name}" if namespace else name
        super().__init__(f"{kind} {where} {self._what()}{suffix}")

    @property
    def reason(self) -> str:
        """The condition and Event reason: ``SecretNotFound``, ``DeploymentForbidden``, ..."""
        return f"{self.kind}{self.suffix}"

    def _what(self) -> str:
        return "could not be used"


class NotFound(KubeError):
    """404: the object does not exist (or, for a SyncBroker, is being deleted)."""

    suffix = "NotFound"

    def _what(self) -> str:
        return "not found"


class Forbidden(KubeError):
    """403: RBAC denies the operator this verb on the object; as visible as a missing object."""

    suffix = "Forbidden"

    def __init__(self, kind: str, namespace: str, name: str, detail: str = "", *, action: str = "read") -> None:
        self.action = action
        super().__init__(kind, namespace, name, detail)

    def _what(self) -> str:
        return f"may not be {self.action} by the operator (RBAC)"


class Conflict(KubeError):
    """409: someone else changed the object meanwhile; the next attempt sees their change."""

    permanent = False
    suffix = "Conflict"

    def _what(self) -> str:
        return "was changed concurrently (conflict)"


class Invalid(KubeError):
    """The object or a write to it is malformed: 400/422, undecodable Secret data, a spec the model refuses."""

    suffix = "Invalid"

    def _what(self) -> str:
        return "is invalid"


class Unavailable(KubeError):
    """The API server did not answer usefully (5xx, 429, timeouts, connection refused): retry later."""

    permanent = False
    suffix = "Unavailable"

    def _what(self) -> str:
        return "could not be reached (API server unavailable)"
