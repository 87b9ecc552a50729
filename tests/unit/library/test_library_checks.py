"""System checks: each misconfiguration gives its id; a good configuration gives none."""

from __future__ import annotations

import pytest

from rabbitsync.django.checks import configuration, handlers, installed_apps
from rabbitsync.django.conf import resolve
from rabbitsync.django.handlers import HandlerRegistry
from rabbitsync.topology import sidecar_contract as contract

pytestmark = pytest.mark.unit

GOOD = {"CLUSTER": "east", "SERVICE": "menu", "AMQP_URL": "amqp://u:secret@broker:5672/%2F"}


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def registry(*types: str) -> HandlerRegistry:
    made = HandlerRegistry()
    for event_type in types:
        made.register(event_type, lambda event: None)
    return made


def subscribed(*types: str) -> dict[str, object]:
    spec = contract.build(
        cluster="east",
        namespace="shop",
        subscription="menu",
        events=list(types),
        max_attempts=3,
        initial_backoff_ms=100,
        max_backoff_ms=1000,
        dead_letter=True,
        prefetch=10,
    )
    return {**GOOD, "SUBSCRIPTIONS": contract.dumps([spec])}


def test_a_good_configuration_passes():
    settings = resolve(subscribed("menu.updated"), {})
    assert configuration(settings, sidecar=True) == []
    assert handlers(settings, registry("menu.updated")) == []
    assert installed_apps(["rabbitsync.django", "rabbitsync.sidecar", "menu"]) == []
    assert installed_apps(["rabbitsync.django", "menu"]) == []


def test_missing_identity_and_broker():
    settings = resolve({}, {})
    assert ids(configuration(settings, sidecar=True)) == ["rabbitsync.W001", "rabbitsync.W004"]
    assert ids(configuration(settings, sidecar=False)) == ["rabbitsync.W001"]


@pytest.mark.parametrize("url", ["http://broker", "amqp://", "broker:5672", "amqp://[::1"])
def test_an_unusable_broker_uri_is_reported_and_never_shown(url):
    messages = configuration(resolve({**GOOD, "AMQP_URL": url + "?password=hunter2"}, {}), sidecar=True)
    assert ids(messages) == ["rabbitsync.W005"]
    assert "hunter2" not in messages[0].msg


def test_handlers_against_subscriptions():
    settings = resolve(subscribed("menu.updated", "menu.deleted"), {})
    messages = handlers(settings, registry("menu.updated", "menu.renamed", "bad type!"))
    assert [(m.id, m.msg.split("'")[1]) for m in messages] == [
        ("rabbitsync.E002", "bad type!"),
        ("rabbitsync.W002", "menu.deleted"),
        ("rabbitsync.W003", "bad type!"),
        ("rabbitsync.W003", "menu.renamed"),
    ]
    # Without subscriptions (the web process) only the grammar is checked.
    assert ids(handlers(resolve(GOOD, {}), registry("menu.renamed"))) == []


@pytest.mark.parametrize(
    "apps", [["rabbitsync.sidecar"], ["rabbitsync.sidecar", "rabbitsync.django"], ["x", "rabbitsync.sidecar"]]
)
def test_the_sidecar_app_needs_the_library_app_before_it(apps):
    assert ids(installed_apps(apps)) == ["rabbitsync.E003"]
