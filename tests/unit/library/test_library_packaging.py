"""The library installs without the operator: run in `make test-django42`'s venv (only rabbitsync[django])."""

from __future__ import annotations

import importlib
import importlib.util
import os
import tomllib
from pathlib import Path

import django
import pytest

from rabbitsync.django.database import sqlite_engine

pytestmark = pytest.mark.unit

PYPROJECT = Path(__file__).parents[3] / "pyproject.toml"


def test_the_base_and_the_django_extra_leave_the_operator_dependencies_out():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    library = " ".join(project["dependencies"] + project["optional-dependencies"]["django"]).lower()
    assert "kopf" not in library and "kubernetes" not in library
    assert "kopf" in " ".join(project["optional-dependencies"]["operator"])


@pytest.mark.skipif(not os.environ.get("RABBITSYNC_LIBRARY_ONLY"), reason="only in the library-only venv")
def test_this_environment_has_the_library_and_not_the_operator():
    for absent in ("kopf", "kubernetes"):
        assert importlib.util.find_spec(absent) is None, f"{absent} is installed"
    for module in ("rabbitsync.django.conf", "rabbitsync.django.tracing", "rabbitsync.sidecar.health"):
        importlib.import_module(module)


def test_sqlite_engine_is_ours_only_where_django_lacks_the_options():
    assert sqlite_engine((4, 2)) == "rabbitsync.django.backends.sqlite3"
    assert sqlite_engine((5, 0)) == "rabbitsync.django.backends.sqlite3"
    assert sqlite_engine((5, 1)) == "django.db.backends.sqlite3"
    assert sqlite_engine() == ("django.db.backends.sqlite3" if django.VERSION >= (5, 1) else sqlite_engine((4, 2)))
