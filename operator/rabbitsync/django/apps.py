"""Django app config: registers handlers found in installed apps once the registry is ready, and the
library's system checks (:mod:`rabbitsync.django.checks`)."""

from django.apps import AppConfig


class RabbitSyncConfig(AppConfig):
    name = "rabbitsync.django"
    label = "rabbitsync"
    verbose_name = "rabbitsync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.checks import Tags, register

        from rabbitsync.django import checks, handlers

        register(checks.check_rabbitsync, Tags.compatibility)
        handlers.autodiscover()
