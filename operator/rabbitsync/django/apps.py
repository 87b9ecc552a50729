"""Django app config: registers handlers found in installed apps once the registry is ready."""

from django.apps import AppConfig


class RabbitSyncConfig(AppConfig):
    name = "rabbitsync.django"
    label = "rabbitsync"
    verbose_name = "rabbitsync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from rabbitsync.django import handlers

        handlers.autodiscover()
