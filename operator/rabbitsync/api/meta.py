"""What every rabbitsync resource model shares: the API group, the version, and the model base.

The models here are the single source of truth for the resources: the CRDs in ``crds/`` are generated
from them (``rabbitsync.api.crd``), and the controller parses objects with them. Field names are
snake_case in Python and camelCase on the wire, as Kubernetes conventions want.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "rabbitsync.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "rabbitsync"

# DNS-1123 names, as Kubernetes validates object names.
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


LABEL_NAME_RULE = {
    # The name becomes part of broker-side names: a label keeps it short and dot-free, so "orders" and
    # "orders.retry.5ms" can never produce colliding queue names.
    "rule": "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 63",
    "message": "metadata.name must be a DNS-1123 label (at most 63 characters, no dots)",
}
"""Root validation of the kinds whose name becomes part of a broker-side name."""


def immutable(what: str) -> dict[str, Any]:
    """``json_schema_extra`` of a field the API server refuses to change (CEL ``self == oldSelf``)."""
    return {"x-kubernetes-validations": [{"rule": "self == oldSelf", "message": f"{what} is immutable"}]}


class ApiModel(BaseModel):
    """Base of every spec/status model: camelCase aliases, unknown fields refused."""

    # extra="forbid" mirrors what the API server does with fieldValidation=Strict, so an object
    # that got past the server parses here too, and a typo in a unit test fails loudly.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


SpecT = TypeVar("SpecT", bound=BaseModel)
StatusT = TypeVar("StatusT", bound=BaseModel)


class ApiObject(ApiModel, Generic[SpecT, StatusT]):
    """An object of one kind as read from the API server (metadata left as a plain mapping); each kind
    subclasses it with its spec and status and gives ``kind`` its default."""

    api_version: str = Field(default=API_VERSION, description=API_VERSION)
    kind: str = Field(description="The object's Kind.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")
    spec: SpecT = Field(description="Desired state.")
    status: StatusT | None = Field(default=None, description="Observed state.")


@dataclass(frozen=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry: what ``kubectl get`` shows."""

    name: str
    type: str
    json_path: str
    description: str
    priority: int = 0


AGE_COLUMN = PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation.")
"""Every kind's last column, as ``kubectl get`` shows built-in kinds."""


@dataclass(frozen=True)
class ResourceInfo:
    """The names and presentation of one Kind, everything a CRD needs besides the schema."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    description: str
    printer_columns: tuple[PrinterColumn, ...] = ()
    # Rules on the whole object (they may read ``self.metadata.name``, nothing else of metadata).
    root_validations: tuple[dict[str, str], ...] = field(default=())
    scope: Literal["Namespaced", "Cluster"] = "Namespaced"

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"
