"""Generate the CustomResourceDefinitions from the pydantic models, so the two can never disagree.

Pydantic emits JSON Schema; the API server wants a *structural* OpenAPI v3 schema: no ``$ref``, no
``anyOf`` with ``null`` for optional fields, no ``additionalProperties`` next to ``properties`` (pruning
and ``fieldValidation=Strict`` already refuse unknown fields), no ``uniqueItems``. This module does that
translation and insists that every field has a description, so ``kubectl explain`` is always useful.

Run ``python -m rabbitsync.api.crd [DIR ...]`` to rewrite ``crds/`` after changing a model (``make crds``
also writes the Helm chart's ``charts/rabbitsync/crds/``: the same files, so both install the same CRDs).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from rabbitsync.api import clustersyncbroker, syncbroker, syncpublication, syncsubscription
from rabbitsync.api.meta import CATEGORY, GROUP, VERSION, ResourceInfo

Schema = dict[str, Any]

HEADER = "# Generated from the models in rabbitsync.api by `python -m rabbitsync.api.crd`; do not edit.\n"

# Keys JSON Schema allows but structural schemas do not (or that would only add noise).
_DROPPED = {"title", "additionalProperties", "uniqueItems"}


class SchemaError(ValueError):
    """A model cannot be expressed as a structural schema (a bug in the model, found at generation)."""


def structural_schema(model: type[BaseModel], *, keep_defaults: bool = True) -> Schema:
    """The model's JSON schema turned into a structural OpenAPI v3 schema."""
    raw = model.model_json_schema(by_alias=True)
    defs = raw.pop("$defs", {})
    return _walk(raw, defs, keep_defaults, path=model.__name__)


def _walk(node: Schema, defs: dict[str, Schema], keep_defaults: bool, path: str) -> Schema:
    node = _inline(node, defs, path)
    out: Schema = {}
    for key, value in node.items():
        if key in _DROPPED or (key == "default" and not keep_defaults):
            continue
        if key == "properties":
            out[key] = {}
            for name, sub in value.items():
                child = _walk(sub, defs, keep_defaults, f"{path}.{name}")
                if not child.get("description"):
                    raise SchemaError(f"{path}.{name}: every field needs a description (kubectl explain)")
                out[key][name] = child
        elif key == "items":
            out[key] = _walk(value, defs, keep_defaults, f"{path}[]")
        else:
            out[key] = value
    return out


def _inline(node: Schema, defs: dict[str, Schema], path: str) -> Schema:
    """``node`` with a ``$ref`` replaced by its definition and ``X | None`` by ``X`` (optional is not nullable)."""
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        node = _merge(copy.deepcopy(target), node)
    if "anyOf" in node:
        variants = [v for v in node.pop("anyOf") if v != {"type": "null"}]
        if len(variants) != 1:
            raise SchemaError(f"{path}: only `X | None` unions are supported")
        if node.get("default", ...) is None:
            del node["default"]
        node = _merge(dict(variants[0]), node)
        if "$ref" in node:
            return _inline(node, defs, path)
    return node


def _merge(base: Schema, override: Schema) -> Schema:
    """``override`` wins, except that CEL rules of a type and of the field using it are combined."""
    merged = {**base, **override}
    rules = base.get("x-kubernetes-validations", []) + override.get("x-kubernetes-validations", [])
    if rules:
        merged["x-kubernetes-validations"] = rules
    return merged


def custom_resource_definition(info: ResourceInfo, spec: type[BaseModel], status: type[BaseModel]) -> Schema:
    """The CRD of one Kind: one served and stored version with a status subresource."""
    root: Schema = {
        "type": "object",
        "description": info.description,
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this object."},
            "kind": {"type": "string", "description": "Kind of this object."},
            "metadata": {"type": "object"},
            "spec": structural_schema(spec),
            # The operator writes status whole; defaults there would only invent values it never set.
            "status": structural_schema(status, keep_defaults=False),
        },
        "required": ["spec"],
    }
    if info.root_validations:
        root["x-kubernetes-validations"] = [dict(rule) for rule in info.root_validations]
    columns = []
    for column in info.printer_columns:
        entry: Schema = {
            "name": column.name,
            "type": column.type,
            "jsonPath": column.json_path,
            "description": column.description,
        }
        if column.priority:
            entry["priority"] = column.priority
        columns.append(entry)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": info.crd_name},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": [CATEGORY],
            },
            "scope": info.scope,
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


def all_crds() -> list[Schema]:
    """Every CRD of the group, in a stable order."""
    return [
        custom_resource_definition(syncbroker.RESOURCE, syncbroker.SyncBrokerSpec, syncbroker.SyncBrokerStatus),
        custom_resource_definition(
            syncsubscription.RESOURCE,
            syncsubscription.SyncSubscriptionSpec,
            syncsubscription.SyncSubscriptionStatus,
        ),
        custom_resource_definition(
            syncpublication.RESOURCE, syncpublication.SyncPublicationSpec, syncpublication.SyncPublicationStatus
        ),
        custom_resource_definition(
            clustersyncbroker.RESOURCE, clustersyncbroker.ClusterSyncBrokerSpec, syncbroker.SyncBrokerStatus
        ),
    ]


def file_name(crd: Schema) -> str:
    """``<group>_<plural>.yaml``, the controller-gen convention."""
    return f"{crd['spec']['group']}_{crd['spec']['names']['plural']}.yaml"


def render(crd: Schema) -> str:
    return HEADER + yaml.safe_dump(crd, sort_keys=False, width=100)


def write_crds(directory: Path) -> list[Path]:
    """Write every CRD to ``directory``; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for crd in all_crds():
        path = directory / file_name(crd)
        path.write_text(render(crd))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    for directory in args or ["crds"]:
        for path in write_crds(Path(directory)):
            print(path)


if __name__ == "__main__":
    main()
