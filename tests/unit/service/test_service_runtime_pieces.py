"""Settings resolution, backoff, the handler registry, JSON logs and the console entry point."""

from __future__ import annotations

import json
import logging

import pytest

from rabbitsync.backoff import Backoff
from rabbitsync.django.conf import ImproperlyConfigured, resolve
from rabbitsync.django.handlers import HandlerRegistry
from rabbitsync.sidecar import main as sidecar_main
from rabbitsync.sidecar.logs import JsonFormatter, current_event_id

pytestmark = pytest.mark.unit


def test_settings_dict_beats_environment_beats_default():
    settings = resolve({"SERVICE": "menu"}, {"RABBITSYNC_SERVICE": "ignored", "RABBITSYNC_CLUSTER": "east"})
    assert (settings.service, settings.cluster, settings.exchange) == ("menu", "east", "rabbitsync.events")
    assert settings.origin.source == "/clusters/east/namespaces/default/services/menu"


def test_settings_are_typed_from_the_environment():
    settings = resolve(
        {},
        {"RABBITSYNC_HTTP_PORT": "9000", "RABBITSYNC_RELAY_IN_PROCESS": "false", "RABBITSYNC_CONFIRM_TIMEOUT": "2.5"},
    )
    assert (settings.http_port, settings.relay_in_process, settings.confirm_timeout) == (9000, False, 2.5)


@pytest.mark.parametrize(
    ("overrides", "environ"),
    [
        ({"HTTP_PORT": "eighty"}, {}),
        ({}, {"RABBITSYNC_RELAY_IN_PROCESS": "maybe"}),
        ({"NO_SUCH_KEY": 1}, {}),
    ],
)
def test_bad_settings_are_refused_clearly(overrides, environ):
    with pytest.raises(ImproperlyConfigured):
        resolve(overrides, environ)


def test_origin_needs_cluster_and_service():
    with pytest.raises(ImproperlyConfigured):
        _ = resolve({}, {}).origin


def test_backoff_grows_jittered_and_capped():
    low = Backoff(initial=0.1, cap=1.0, rng=lambda: 0.0)
    high = Backoff(initial=0.1, cap=1.0, rng=lambda: 0.999)
    assert [round(low.next(), 3) for _ in range(6)] == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5]
    delays = [high.next() for _ in range(40)]
    assert delays[0] < 0.1 and all(0.5 <= d < 1.0 for d in delays[4:])  # never above the cap
    low.reset()
    assert round(low.next(), 3) == 0.05


def test_registry_keeps_several_handlers_per_type_in_order_and_each_function_once():
    registry = HandlerRegistry()

    def first(event): ...

    def second(event): ...

    registry.register("menu.updated", first)
    registry.register("menu.updated", second)
    registry.register("menu.updated", first)  # same function again, e.g. module imported twice
    assert registry.get("menu.updated") == (first, second)
    assert registry.get("menu.created") == ()
    assert registry.types() == {"menu.updated"}
    registry.unregister("menu.updated", first)
    assert registry.get("menu.updated") == (second,)
    registry.unregister("menu.updated")
    assert registry.types() == frozenset()


def test_log_lines_are_json_with_the_event_id():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "applied %s", ("it",), None)
    record.queue = "q"
    token = current_event_id.set("evt-1")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        current_event_id.reset(token)
    assert line["message"] == "applied it"
    assert line["event_id"] == "evt-1"
    assert line["queue"] == "q"
    assert json.loads(JsonFormatter().format(record))["event_id"] is None


def test_console_script_explains_a_missing_settings_module(monkeypatch, capsys):
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    assert sidecar_main.main() == 2
    assert "DJANGO_SETTINGS_MODULE is not set" in capsys.readouterr().err
