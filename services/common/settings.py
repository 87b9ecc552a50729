"""Settings every example service starts from, read from the environment (12-factor).

A service's ``settings.py`` does ``from common.settings import *`` and adds its app, URLs and
database file. Environment:

- ``DJANGO_SECRET_KEY``: signing key, from a Secret. Required unless ``DJANGO_DEBUG`` is on: a
  service refuses to start with the development default, which is public.
- ``DJANGO_DEBUG``: ``true`` for tracebacks in responses, on a developer's machine only (the debug
  page shows the environment, broker and database credentials included); default false, and no
  manifest sets it.
- ``ALLOWED_HOSTS``: comma-separated; default ``*`` (the services sit behind a cluster Service).
- ``DATABASE_URL``: e.g. ``postgres://user:pass@host/db``; else SQLite at ``SQLITE_PATH``.
- ``RABBITSYNC_*``: the library's settings (see ``rabbitsync.django.conf``); ``RABBITSYNC_SERVICE``
  and ``RABBITSYNC_CLUSTER`` default to the service's name and ``local`` so a bare local run works.
- ``LOG_LEVEL``: default ``INFO``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from common import security
from rabbitsync.django import database_config

DEBUG = security.debug(os.environ)
SECRET_KEY = security.secret_key(os.environ, debugging=DEBUG)
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "*").split(",") if h.strip()]

BASE_APPS = ["rabbitsync.django", "rabbitsync.sidecar"]
MIDDLEWARE = ["django.middleware.security.SecurityMiddleware", "django.middleware.common.CommonMiddleware"]
# Clients POST JSON to exact paths; a redirect to add the slash would drop the body.
APPEND_SLASH = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# JSON lines, the sidecar's format (one object per line with time, level, logger, message, event_id), so
# one log pipeline reads both containers of a pod.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "rabbitsync.sidecar.logs.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # The development server's request lines too (Django gives them a plain-text handler of their own).
    "loggers": {"django.server": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}


def database(default_sqlite: Path) -> dict[str, Any]:
    """``DATABASE_URL`` if set, else SQLite at ``SQLITE_PATH`` (default ``default_sqlite``)."""
    return database_config(os.environ.get("SQLITE_PATH") or default_sqlite)


def rabbitsync(service: str) -> dict[str, Any]:
    """The ``RABBITSYNC`` dict: only defaults the environment did not set (the dict wins over env)."""
    defaults = {"SERVICE": service, "CLUSTER": "local"}
    return {key: value for key, value in defaults.items() if f"RABBITSYNC_{key}" not in os.environ}
