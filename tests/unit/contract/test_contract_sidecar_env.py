"""The operator-sidecar contract end to end: what the operator renders is what the sidecar reads.

The operator's container env goes through a fake kubelet (Secret keys and downward-API fields
resolved with made-up values) into the sidecar's Django settings, and must come out as the same
configuration. The variable names are pinned: the harness's pod runner and the tests use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import ValidationError

from rabbitsync.api.syncsubscription import SyncSubscriptionSpec
from rabbitsync.conventions import SECRET_URI_KEY
from rabbitsync.django.conf import resolve
from rabbitsync.operator import sidecar_spec
from rabbitsync.topology.sidecar_contract import (
    CA_KEY,
    ConsumerSpec,
    SidecarConfig,
    build,
    dumps,
    for_subscription,
    to_env,
)

pytestmark = pytest.mark.unit

BROKER_SECRET = "rabbit"
CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
SECRETS = {BROKER_SECRET: {SECRET_URI_KEY: "amqps://menu:s3cret@rabbit.example:5671/prod", CA_KEY: CA}}
POD = {"metadata.namespace": "food", "status.podIP": "10.1.2.3"}
APP = {
    "name": "app",
    "image": "menu:1",
    "env": [{"name": "SQLITE_PATH", "value": "/data/db"}, {"name": "RABBITSYNC_CLUSTER", "value": "stale"}],
}
CONSUMERS = [
    build(
        cluster="east",
        namespace="food",
        subscription=name,
        events=events,
        max_attempts=4,
        initial_backoff_ms=500,
        max_backoff_ms=2000,
        dead_letter=dead_letter,
        prefetch=7,
        batch=30 if dead_letter else 1,
    )
    for name, events, dead_letter in (("menus", ["MENU_ITEM_CREATED"], False), ("cafés", ["a.b", "C"], True))
]


def _kubelet(container: Mapping[str, Any]) -> dict[str, str]:
    """The environment a kubelet gives ``container`` in a pod described by ``SECRETS`` and ``POD``."""
    env: dict[str, str] = {}
    for var in container["env"]:
        if "value" in var:
            # A kubelet would expand $(NAME) here: the contract must never produce text that looks like it.
            assert "$(" not in var["value"], var
            env[var["name"]] = var["value"]
        elif "secretKeyRef" in var["valueFrom"]:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = SECRETS[ref["name"]][ref["key"]]
        else:
            env[var["name"]] = POD[var["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


def test_what_the_operator_renders_the_sidecar_settings_read_back() -> None:
    container = sidecar_spec.sidecar_container(
        APP, CONSUMERS, cluster="east", service="menu", exchange="shop.events", secret=BROKER_SECRET
    )
    settings = resolve({}, _kubelet(container))
    received = SidecarConfig(**{name: getattr(settings, name) for name in SidecarConfig.model_fields})
    assert received == SidecarConfig(
        amqp_url="amqps://menu:s3cret@rabbit.example:5671/prod",
        ca_pem=CA,
        cluster="east",
        namespace="food",
        service="menu",
        exchange="shop.events",
        subscriptions=tuple(sorted(CONSUMERS, key=lambda c: c.subscription)),
        http_host="10.1.2.3",
        http_port=8088,
    )
    assert container["ports"][0]["containerPort"] == received.http_port
    assert settings.origin.source == "/clusters/east/namespaces/food/services/menu"
    assert settings.subscriptions[0].retry_target(1) == (
        "rabbitsync.east.@delay.quorum.500ms",
        "rabbitsync.east.food.caf-s",
    )


def test_the_variable_names_are_the_ones_pods_and_the_harness_know() -> None:
    assert list(to_env(SidecarConfig())) == [
        "RABBITSYNC_AMQP_URL",
        "RABBITSYNC_CA_PEM",
        "RABBITSYNC_CLUSTER",
        "RABBITSYNC_NAMESPACE",
        "RABBITSYNC_SERVICE",
        "RABBITSYNC_EXCHANGE",
        "RABBITSYNC_SUBSCRIPTIONS",
        "RABBITSYNC_HTTP_HOST",
        "RABBITSYNC_HTTP_PORT",
    ]


def test_only_the_broker_uri_and_ca_come_from_the_secret_and_are_never_inlined() -> None:
    container = sidecar_spec.sidecar_container(
        APP, CONSUMERS, cluster="east", service="menu", exchange="shop.events", secret=BROKER_SECRET
    )
    from_secrets = {
        var["name"]: var["valueFrom"]["secretKeyRef"]
        for var in container["env"]
        if "secretKeyRef" in var.get("valueFrom", {})
    }
    assert from_secrets == {
        "RABBITSYNC_AMQP_URL": {"name": BROKER_SECRET, "key": SECRET_URI_KEY},
        "RABBITSYNC_CA_PEM": {"name": BROKER_SECRET, "key": CA_KEY},
    }
    assert all("s3cret" not in var.get("value", "") for var in container["env"])


def test_a_sidecar_started_by_hand_reads_the_subscriptions_variable() -> None:
    settings = resolve({}, {"RABBITSYNC_SUBSCRIPTIONS": dumps(CONSUMERS)})
    assert settings.subscriptions == tuple(CONSUMERS)
    assert to_env(SidecarConfig(subscriptions=tuple(CONSUMERS)))["RABBITSYNC_SUBSCRIPTIONS"] == dumps(CONSUMERS)


def test_a_batch_is_carried_to_the_sidecar_and_never_above_the_prefetch() -> None:
    menus, cafes = CONSUMERS
    assert (menus.batch, menus.batch_size) == (1, 1)
    assert (cafes.batch, cafes.batch_size) == (30, 7)
    settings = resolve({}, {"RABBITSYNC_SUBSCRIPTIONS": dumps(CONSUMERS), "RABBITSYNC_CONSUME_WORKERS": "4"})
    assert settings.subscriptions[1].batch == 30
    assert settings.consume_workers == 4


def _retrying(**overrides: Any) -> ConsumerSpec:
    arguments: dict[str, Any] = {
        "cluster": "east",
        "namespace": "food",
        "subscription": "menus",
        "events": ["MENU_ITEM_CREATED"],
        "max_attempts": 5,
        "initial_backoff_ms": 500,
        "max_backoff_ms": 1000,
        "dead_letter": True,
        "prefetch": 10,
    }
    return build(**arguments | overrides)


def test_each_attempt_has_the_delay_exchange_of_its_step_even_where_the_backoff_caps() -> None:
    spec = _retrying()
    assert spec.retry_delays_ms == (500, 1000, 1000, 1000)
    assert spec.retry_exchanges == (
        "rabbitsync.east.@delay.quorum.500ms",
        *["rabbitsync.east.@delay.quorum.1000ms"] * 3,
    )
    assert [spec.retry_target(attempt) for attempt in (1, 4)] == [
        ("rabbitsync.east.@delay.quorum.500ms", "rabbitsync.east.food.menus"),
        ("rabbitsync.east.@delay.quorum.1000ms", "rabbitsync.east.food.menus"),
    ]
    assert spec.retry_queue(4) == "rabbitsync.east.@delay.quorum.1000ms"  # the exchange's queue has its name
    assert _retrying(max_attempts=1).retry_exchanges == ()


def test_the_queue_type_chooses_the_delay_exchanges() -> None:
    assert _retrying(queue_type="classic").retry_exchanges[0] == "rabbitsync.east.@delay.classic.500ms"
    subscription = SyncSubscriptionSpec.model_validate(
        {"service": "menu", "events": ["MENU_ITEM_CREATED"], "broker": "rabbit", "queueType": "classic"}
    )
    spec = for_subscription(cluster="east", namespace="food", subscription="menus", spec=subscription)
    assert set(spec.retry_exchanges) == {f"rabbitsync.east.@delay.classic.{d}ms" for d in spec.retry_delays_ms}


def test_a_contract_of_an_older_release_names_the_subscriptions_own_delay_queues() -> None:
    # What the operator reads from a Deployment an older release rendered, and an older pod publishes to.
    old = ConsumerSpec.model_validate(_retrying().model_dump(by_alias=True, exclude={"retry_exchanges"}))
    assert old.retry_exchanges == ()
    assert old.retry_queue(2) == "rabbitsync.east.food.menus.retry.1000ms"
    assert old.retry_target(2) == ("", "rabbitsync.east.food.menus.retry.1000ms")


def test_a_delay_exchange_for_each_step_or_none_at_all() -> None:
    wire = _retrying().model_dump(by_alias=True)
    with pytest.raises(ValidationError, match="retryExchanges has 3 entries for 4 retryDelaysMs"):
        ConsumerSpec.model_validate(wire | {"retryExchanges": wire["retryExchanges"][:3]})
