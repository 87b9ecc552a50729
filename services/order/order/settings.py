"""Settings of the order service; everything but the app comes from ``common.settings``."""

from pathlib import Path

from common.settings import *  # noqa: F403
from common.settings import BASE_APPS, database, rabbitsync

BASE_DIR = Path(__file__).resolve().parent.parent

INSTALLED_APPS = [*BASE_APPS, "order"]
ROOT_URLCONF = "order.urls"
WSGI_APPLICATION = "order.wsgi.application"
DATABASES = {"default": database(BASE_DIR / "order.sqlite3")}
RABBITSYNC = rabbitsync("order")
