"""Django app config of the sidecar: what makes ``manage.py rabbitsync_sidecar`` a command.

An app of its own, next to ``rabbitsync.django`` rather than inside it, so the library never imports
the sidecar that builds on it. A project that runs the sidecar lists both apps in ``INSTALLED_APPS``.
"""

from django.apps import AppConfig


class RabbitSyncSidecarConfig(AppConfig):
    name = "rabbitsync.sidecar"
    # Not "sidecar": a label is global in a project, and a bare word invites a clash.
    label = "rabbitsync_sidecar"
    verbose_name = "rabbitsync sidecar"

    def ready(self) -> None:
        from django.core.checks import Tags, register

        from rabbitsync.django.checks import check_rabbitsync

        # Also here, so a project missing "rabbitsync.django" is told so (registering twice is harmless).
        register(check_rabbitsync, Tags.compatibility)
