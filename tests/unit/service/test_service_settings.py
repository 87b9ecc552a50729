"""The service library's settings: typed, refused with the key named, read at call time; the sidecar app."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from types import SimpleNamespace

import django.conf
import pytest
from django.core import exceptions
from django.core.management import find_commands
from pydantic import ValidationError

import rabbitsync.django
import rabbitsync.sidecar
from rabbitsync.django.conf import ImproperlyConfigured, get_settings, resolve

pytestmark = pytest.mark.unit


def test_handler_modules_may_be_a_list_or_comma_separated() -> None:
    assert resolve({"HANDLER_MODULES": ["a", "b"]}, {}).handler_modules == ("a", "b")
    assert resolve({}, {"RABBITSYNC_HANDLER_MODULES": "a, b,"}).handler_modules == ("a", "b")
    assert resolve({}, {}).handler_modules == ("rabbitsync_handlers",)


@pytest.mark.parametrize(
    ("overrides", "environ", "named"),
    [
        ({"AMQP_URL": None}, {}, "AMQP_URL from settings.RABBITSYNC['AMQP_URL']"),
        ({"HANDLER_MODULES": 3}, {}, "HANDLER_MODULES"),
        ({"SERVICE": 1}, {}, "SERVICE"),
        ({}, {"RABBITSYNC_HEARTBEAT": "often"}, "HEARTBEAT from environment variable RABBITSYNC_HEARTBEAT"),
        ({}, {"RABBITSYNC_SUBSCRIPTIONS": "[{"}, "SUBSCRIPTIONS from environment variable"),
        ({}, {"RABBITSYNC_SUBSCRIPTIONS": '[{"subscription": "a"}]'}, "SUBSCRIPTIONS[0][queue]"),
        ({"NO_SUCH_KEY": 1, "http_port": 1}, {}, "unknown RABBITSYNC keys: NO_SUCH_KEY, http_port"),
    ],
)
def test_wrong_types_and_unknown_keys_are_refused_with_the_key_named(
    overrides: dict[str, object], environ: dict[str, str], named: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=re.escape(named)):
        resolve(overrides, environ)


def test_unknown_environment_variables_are_left_alone() -> None:
    assert resolve({}, {"RABBITSYNC_LOG_LEVEL": "DEBUG", "RABBITSYNC_STATE_DIR": "/tmp"}).service == ""


def test_settings_are_frozen_and_the_error_is_djangos() -> None:
    with pytest.raises(ValidationError):
        resolve({}, {}).service = "x"  # type: ignore[misc]
    assert issubclass(ImproperlyConfigured, exceptions.ImproperlyConfigured)


def test_get_settings_reads_the_django_settings_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RABBITSYNC_SERVICE", "from-env")
    monkeypatch.setenv("RABBITSYNC_CLUSTER", "east")
    monkeypatch.setattr(django.conf, "settings", SimpleNamespace(RABBITSYNC={"SERVICE": "first"}))
    assert (get_settings().service, get_settings().cluster) == ("first", "east")
    monkeypatch.setattr(django.conf, "settings", SimpleNamespace(RABBITSYNC={}))
    assert get_settings().service == "from-env"


def test_the_sidecar_command_lives_in_the_sidecar_app_and_the_library_never_imports_it() -> None:
    sidecar, library = Path(rabbitsync.sidecar.__file__).parent, Path(rabbitsync.django.__file__).parent
    assert find_commands(str(sidecar / "management")) == ["rabbitsync_sidecar"]
    assert not (library / "management").exists()
    for module in library.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n.startswith("rabbitsync.sidecar")], f"{module} imports the sidecar"
