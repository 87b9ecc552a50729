"""Settings of the restaurant-menu service; everything but the app comes from ``common.settings``."""

from pathlib import Path

from common.settings import *  # noqa: F403
from common.settings import BASE_APPS, database, rabbitsync

BASE_DIR = Path(__file__).resolve().parent.parent

INSTALLED_APPS = [*BASE_APPS, "restaurant_menu"]
ROOT_URLCONF = "restaurant_menu.urls"
WSGI_APPLICATION = "restaurant_menu.wsgi.application"
DATABASES = {"default": database(BASE_DIR / "restaurant-menu.sqlite3")}
RABBITSYNC = rabbitsync("restaurant-menu")
