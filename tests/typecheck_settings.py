"""Django settings for type checking only: django-stubs' mypy plugin sets Django up with them to learn the models.

Not a runtime configuration (each service has its own settings): ``[tool.django-stubs]`` in pyproject.toml
names this module, and the plugin imports it from the repository root, where ``make lint`` runs mypy.
The apps are those of a project that runs the sidecar.
"""

SECRET_KEY = "type-checking-only"
INSTALLED_APPS = ["rabbitsync.django", "rabbitsync.sidecar"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
