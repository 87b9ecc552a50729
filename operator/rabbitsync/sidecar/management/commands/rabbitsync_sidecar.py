"""``manage.py rabbitsync_sidecar``: the consumer sidecar and the outbox relay, in one process.

A thin wrapper: everything lives in :mod:`rabbitsync.sidecar.runner`, configured from
``settings.RABBITSYNC`` and the ``RABBITSYNC_*`` environment the operator injects (see
:mod:`rabbitsync.django.conf`). SIGTERM finishes the in-flight event, then exits; a second one forces.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rabbitsync.sidecar.runner import run


class Command(BaseCommand):
    help = "Consume this service's subscription queues and relay its outbox until SIGTERM."

    def handle(self, *args: Any, **options: Any) -> None:
        code = run()
        if code:
            raise CommandError("rabbitsync sidecar could not start (see the log above)", returncode=code)
