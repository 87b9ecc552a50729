"""The default database of a rabbitsync service: PostgreSQL via ``DATABASE_URL``, else SQLite in WAL.

Services call ``DATABASES = {"default": database_config(BASE_DIR / "db.sqlite3")}``. The SQLite
defaults matter for the sidecar pattern: the web process and the sidecar write one file, so WAL
(readers never block the writer), ``BEGIN IMMEDIATE`` (take the write lock up front instead of
failing with "database is locked" on a lock upgrade) and a busy timeout are what make it work.
``synchronous=NORMAL`` is WAL's usual pairing: durable across process crashes, not power loss.
Connections persist (``CONN_MAX_AGE``, as for PostgreSQL): with Django's default of closing one at
the end of every request, each request opened SQLite again (mapping the WAL index), and the close of
the last connection to the file checkpointed the WAL and the next open started a new one: four
fsyncs and about 10 ms per write of the example services, most of a POST's time (strace, 2026-12-01).
Django 4.2 and 5.0 lack the ``init_command`` and ``transaction_mode`` options: there the engine is
:mod:`rabbitsync.django.backends.sqlite3`, which adds them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
import django

_SQLITE_INIT = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
_SQLITE_ENGINE = "django.db.backends.sqlite3"
CONN_MAX_AGE = 60
"""Seconds a thread keeps its database connection across requests (and the relay's rounds)."""


def database_config(sqlite_path: str | Path, *, env_var: str = "DATABASE_URL") -> dict[str, Any]:
    url = os.environ.get(env_var)
    if url:
        # A plain dict, not dj_database_url's TypedDict: Django settings take any backend's keys.
        config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=CONN_MAX_AGE, conn_health_checks=True))
        if config["ENGINE"] == _SQLITE_ENGINE:
            config.setdefault("OPTIONS", {}).update(_sqlite_options())
            config["ENGINE"] = sqlite_engine()
        return config
    return {
        "ENGINE": sqlite_engine(),
        "NAME": str(sqlite_path),
        "OPTIONS": _sqlite_options(),
        "CONN_MAX_AGE": CONN_MAX_AGE,
        "CONN_HEALTH_CHECKS": True,
    }


def sqlite_engine(version: tuple[int, int] = (django.VERSION[0], django.VERSION[1])) -> str:
    """Django's own SQLite engine from 5.1 on, which has the options we set; ours before."""
    return _SQLITE_ENGINE if version >= (5, 1) else "rabbitsync.django.backends.sqlite3"


def _sqlite_options() -> dict[str, Any]:
    return {"init_command": _SQLITE_INIT, "transaction_mode": "IMMEDIATE", "timeout": 30}
