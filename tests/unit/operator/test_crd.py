"""The generated CRDs: committed YAML matches the models, and the schema is structural and helpful."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rabbitsync.api import RetryPolicy, crd

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
CRDS_DIRS = (ROOT / "crds", ROOT / "charts" / "rabbitsync" / "crds")


def _by_kind() -> dict[str, dict[str, Any]]:
    return {c["spec"]["names"]["kind"]: c for c in crd.all_crds()}


def _schema(kind: str) -> dict[str, Any]:
    return _by_kind()[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


@pytest.mark.parametrize("directory", CRDS_DIRS, ids=lambda d: str(d.relative_to(ROOT)))
@pytest.mark.parametrize("generated", crd.all_crds(), ids=crd.file_name)
def test_committed_yaml_matches_the_models(generated: dict[str, Any], directory: Path) -> None:
    path = directory / crd.file_name(generated)
    assert path.read_text() == crd.render(generated), f"{path} drifted from the models: run `make crds` and commit"


@pytest.mark.parametrize("directory", CRDS_DIRS, ids=lambda d: str(d.relative_to(ROOT)))
def test_crd_folders_hold_only_the_crds(directory: Path) -> None:
    # `kubectl apply -f crds/` and Helm's crds/ read every *.yaml, *.yml and *.json there: nothing else may be one.
    manifests = {p.name for p in directory.iterdir() if p.suffix in (".yaml", ".yml", ".json")}
    assert manifests == {crd.file_name(c) for c in crd.all_crds()}


@pytest.mark.parametrize("kind", ["SyncBroker", "SyncSubscription", "SyncPublication", "ClusterSyncBroker"])
def test_schema_is_structural(kind: str) -> None:
    for node in _nodes(_schema(kind)):
        assert not {"$ref", "$defs", "anyOf", "additionalProperties", "uniqueItems", "title"} & set(node)
        for name, prop in node.get("properties", {}).items():
            if name != "metadata":
                assert prop.get("type") and prop.get("description"), name


def test_every_resource_is_namespaced_with_status_names_and_category() -> None:
    for kind, definition in _by_kind().items():
        spec = definition["spec"]
        # Only the cluster broker is cluster-scoped: its Secret must live outside every tenant namespace.
        scope = "Cluster" if kind == "ClusterSyncBroker" else "Namespaced"
        assert spec["group"] == "rabbitsync.io" and spec["scope"] == scope
        [version] = spec["versions"]
        assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
        assert spec["names"]["categories"] == ["rabbitsync"]
        assert spec["names"]["shortNames"], kind


def test_subscription_short_name_and_printer_columns() -> None:
    spec = _by_kind()["SyncSubscription"]["spec"]
    assert "ssub" in spec["names"]["shortNames"]
    shown = [c["name"] for c in spec["versions"][0]["additionalPrinterColumns"] if not c.get("priority")]
    assert shown == ["Service", "Events", "Ready", "Reason", "Consumers", "Queue depth", "Age"]
    events = next(c for c in spec["versions"][0]["additionalPrinterColumns"] if c["name"] == "Events")
    # A count, not the raw JSON array of types.
    assert events == {**events, "type": "integer", "jsonPath": ".status.eventCount"}


def test_subscription_validation_rules() -> None:
    spec = _schema("SyncSubscription")["properties"]["spec"]
    props = spec["properties"]
    assert props["events"]["minItems"] == 1
    assert props["events"]["x-kubernetes-list-type"] == "set"
    assert props["events"]["items"]["pattern"].startswith("^[A-Za-z]")
    for immutable in ("broker", "queueType"):
        assert {"rule": "self == oldSelf", "message": f"{immutable} is immutable"} in props[immutable][
            "x-kubernetes-validations"
        ]
    assert props["queueType"]["enum"] == ["quorum", "classic"] and props["queueType"]["default"] == "quorum"
    assert props["deletionPolicy"]["enum"] == ["delete", "retain"]
    retry = props["retry"]
    assert retry["default"] == RetryPolicy().model_dump(by_alias=True)
    rules = [r["rule"] for r in retry["x-kubernetes-validations"]]
    assert "self.initialBackoffMs <= self.maxBackoffMs" in rules
    assert retry["properties"]["maxAttempts"]["minimum"] == 1
    assert spec["required"] == ["service", "events"]


def test_status_has_no_defaults_and_conditions_are_a_map() -> None:
    status = _schema("SyncSubscription")["properties"]["status"]
    assert not any("default" in node for node in _nodes(status))
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_broker_interface_names() -> None:
    props = _schema("SyncBroker")["properties"]["spec"]["properties"]
    assert props["secretRef"]["properties"]["name"]["type"] == "string"
    assert props["exchange"]["default"] == "rabbitsync.events"
    assert "caSecretRef" in props["tls"]["properties"]


def test_rendered_yaml_is_loadable() -> None:
    for generated in crd.all_crds():
        assert yaml.safe_load(crd.render(generated)) == generated
