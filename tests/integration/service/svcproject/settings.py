"""Settings of the test service. The database file and every rabbitsync value come from the
environment, so the pytest process and the sidecar subprocesses it starts share one database."""

import os

from rabbitsync.django import database_config

SECRET_KEY = "rabbitsync-tests-only"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["rabbitsync.django", "rabbitsync.sidecar", "svcapp"]
DATABASES = {"default": database_config(os.environ.get("SVC_DB_PATH", "/tmp/rabbitsync-svc.sqlite3"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# All from RABBITSYNC_* environment variables; the dict exists so override_settings has a target.
RABBITSYNC: dict[str, object] = {}
