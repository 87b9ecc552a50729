"""Settings of the test service. The database file and every rabbitsync value come from the
environment, so the pytest process and the sidecar subprocesses it starts share one database."""

import os

from rabbitsync.django import database_config

SECRET_KEY = "rabbitsync-tests-only"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = [
    # The admin and what it needs: test_library_admin.py opens the outbox and inbox pages.
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rabbitsync.django",
    "rabbitsync.sidecar",
    "svcapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
ROOT_URLCONF = "svcproject.urls"
DATABASES = {"default": database_config(os.environ.get("SVC_DB_PATH", "/tmp/rabbitsync-svc.sqlite3"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# All from RABBITSYNC_* environment variables; the dict exists so override_settings has a target.
RABBITSYNC: dict[str, object] = {}
