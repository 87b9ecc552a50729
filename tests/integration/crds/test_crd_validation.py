"""The API server itself refuses invalid SyncSubscriptions, SyncPublications and brokers, with a readable reason.

Table-driven: each case is a resource (or an update of one) and a fragment of the message
``kubectl apply`` would print. Runs against a real kube-apiserver with the generated CRDs installed.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from rabbitsync.api import GROUP, VERSION, crd
from rabbitsync.conventions import is_event_type

pytestmark = pytest.mark.integration

VALID_SUB = {"service": "orders", "events": ["restaurant.created"]}


@pytest.fixture(scope="module")
def api(clusters) -> client.CustomObjectsApi:  # type: ignore[no-untyped-def]
    """The east cluster with the current CRDs installed (server-side apply: idempotent)."""
    handle = clusters["east"]
    extensions = client.ApiextensionsV1Api(handle.api)
    for definition in crd.all_crds():
        extensions.patch_custom_resource_definition(
            definition["metadata"]["name"],
            definition,
            field_manager="rabbitsync-tests",
            force=True,
            _content_type="application/apply-patch+yaml",
        )
    for definition in crd.all_crds():
        _wait_established(extensions, definition["metadata"]["name"])
    return client.CustomObjectsApi(handle.api)


def _wait_established(extensions: client.ApiextensionsV1Api, name: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = extensions.read_custom_resource_definition(name).status
        if any(c.type == "Established" and c.status == "True" for c in (status.conditions or [])):
            return
        time.sleep(0.2)
    raise AssertionError(f"CRD {name} not established")


KINDS = {
    "syncsubscriptions": "SyncSubscription",
    "syncbrokers": "SyncBroker",
    "syncpublications": "SyncPublication",
    "clustersyncbrokers": "ClusterSyncBroker",
}


def _create(api: client.CustomObjectsApi, namespace: str, plural: str, name: str, spec: Any) -> None:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KINDS[plural], "metadata": {"name": name}, "spec": spec}
    if plural == "clustersyncbrokers":
        api.create_cluster_custom_object(GROUP, VERSION, plural, body, field_validation="Strict")
    else:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body, field_validation="Strict")


def _refusal(call: Any) -> str:
    with pytest.raises(ApiException) as caught:
        call()
    assert caught.value.status in (400, 422), caught.value.body
    return json.loads(caught.value.body)["message"]


REFUSED_ON_CREATE = [
    ("empty events", "syncsubscriptions", "s", {**VALID_SUB, "events": []}, "spec.events"),
    ("no events", "syncsubscriptions", "s", {"service": "orders"}, "spec.events: Required"),
    ("bad event name", "syncsubscriptions", "s", {**VALID_SUB, "events": ["1bad name"]}, "spec.events[0]"),
    ("duplicate events", "syncsubscriptions", "s", {**VALID_SUB, "events": ["a", "a"]}, "Duplicate value"),
    ("bad service", "syncsubscriptions", "s", {**VALID_SUB, "service": "Orders_Svc"}, "spec.service"),
    ("zero attempts", "syncsubscriptions", "s", {**VALID_SUB, "retry": {"maxAttempts": 0}}, "maxAttempts"),
    (
        "backoff inverted",
        "syncsubscriptions",
        "s",
        {**VALID_SUB, "retry": {"initialBackoffMs": 5000, "maxBackoffMs": 1000}},
        "initialBackoffMs must not exceed maxBackoffMs",
    ),
    ("huge backoff", "syncsubscriptions", "s", {**VALID_SUB, "retry": {"maxBackoffMs": 10**10}}, "maxBackoffMs"),
    ("bad queue type", "syncsubscriptions", "s", {**VALID_SUB, "queueType": "stream"}, "spec.queueType"),
    ("bad policy", "syncsubscriptions", "s", {**VALID_SUB, "deletionPolicy": "orphan"}, "deletionPolicy"),
    ("zero prefetch", "syncsubscriptions", "s", {**VALID_SUB, "prefetch": 0}, "spec.prefetch"),
    ("unknown field", "syncsubscriptions", "s", {**VALID_SUB, "evnts": ["a"]}, 'unknown field "spec.evnts"'),
    ("dotted name", "syncsubscriptions", "a.b", VALID_SUB, "metadata.name must be a DNS-1123 label"),
    ("broker without secret", "syncbrokers", "b", {"exchange": "x"}, "spec.secretRef: Required"),
    ("bad exchange", "syncbrokers", "b", {"secretRef": {"name": "s"}, "exchange": "a b"}, "spec.exchange"),
    ("publication without events", "syncpublications", "p", {"service": "orders"}, "spec.events: Required"),
    ("publication empty events", "syncpublications", "p", {"service": "orders", "events": []}, "spec.events"),
    ("publication wildcard", "syncpublications", "p", {"service": "orders", "events": ["a.#"]}, "spec.events[0]"),
    ("publication duplicates", "syncpublications", "p", {"service": "o", "events": ["a", "a"]}, "Duplicate value"),
    ("publication bad service", "syncpublications", "p", {"service": "O_1", "events": ["a"]}, "spec.service"),
    ("publication dotted name", "syncpublications", "a.b", {"service": "o", "events": ["a"]}, "DNS-1123 label"),
    (
        "cluster broker bad namespace",
        "clustersyncbrokers",
        "cb",
        {"secretRef": {"name": "s"}, "allowedNamespaces": ["Foo_App"]},
        "spec.allowedNamespaces[0]",
    ),
]


@pytest.mark.parametrize(
    ("plural", "name", "spec", "reason"),
    [case[1:] for case in REFUSED_ON_CREATE],
    ids=[case[0] for case in REFUSED_ON_CREATE],
)
def test_invalid_resources_are_refused(
    api: client.CustomObjectsApi, namespace: str, plural: str, name: str, spec: Any, reason: str
) -> None:
    assert reason in _refusal(lambda: _create(api, namespace, plural, name, spec))


@pytest.mark.parametrize(("field", "value"), [("broker", "other"), ("queueType", "classic")])
def test_immutable_fields_cannot_change(api: client.CustomObjectsApi, namespace: str, field: str, value: str) -> None:
    _create(api, namespace, "syncsubscriptions", "orders", VALID_SUB)
    patch = {"spec": {field: value}}
    message = _refusal(
        lambda: api.patch_namespaced_custom_object(GROUP, VERSION, namespace, "syncsubscriptions", "orders", patch)
    )
    assert f"{field} is immutable" in message


def test_a_publications_broker_is_immutable_and_defaulted(api: client.CustomObjectsApi, namespace: str) -> None:
    _create(api, namespace, "syncpublications", "orders", {"service": "orders", "events": ["ORDER_CREATED"]})
    stored = api.get_namespaced_custom_object(GROUP, VERSION, namespace, "syncpublications", "orders")
    assert stored["spec"]["broker"] == "default"
    patch = {"spec": {"broker": "other"}}
    message = _refusal(
        lambda: api.patch_namespaced_custom_object(GROUP, VERSION, namespace, "syncpublications", "orders", patch)
    )
    assert "broker is immutable" in message


def test_defaults_are_filled_in_by_the_server(api: client.CustomObjectsApi, namespace: str) -> None:
    _create(api, namespace, "syncsubscriptions", "orders", VALID_SUB)
    stored = api.get_namespaced_custom_object(GROUP, VERSION, namespace, "syncsubscriptions", "orders")
    assert stored["spec"] == {
        **VALID_SUB,
        "broker": "default",
        "deletionPolicy": "delete",
        "retry": {"maxAttempts": 5, "initialBackoffMs": 1000, "maxBackoffMs": 60000},
        "deadLetter": True,
        "prefetch": 10,
        "queueType": "quorum",
        "batch": 1,
        "backfill": "none",
    }


@pytest.mark.parametrize(
    "event_type",
    ["a", "restaurant.created", "a-b.c_d", "x" * 120, "a..b", "a.", ".a", "1abc", "a*", "a#", "x" * 121],
    ids=lambda value: value if len(value) < 20 else f"{len(value)} chars",
)
def test_the_api_server_reads_the_event_type_grammar_as_python_does(
    api: client.CustomObjectsApi, namespace: str, event_type: str
) -> None:
    """Its Go regexp and Python's agree on the edge cases, so the envelope publishes what it accepts."""
    try:
        _create(api, namespace, "syncsubscriptions", "s", {**VALID_SUB, "events": [event_type]})
    except ApiException as e:
        assert "spec.events[0]" in str(e.body), e.body
        accepted = False
    else:
        accepted = True
    assert accepted == is_event_type(event_type)
