"""Deleting old outbox and inbox rows, so the tables stay small in a service that runs for years."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from rabbitsync.django.conf import Settings
from rabbitsync.django.models import InboxMessage, OutboxMessage


def purge(settings: Settings) -> tuple[int, int]:
    """Delete sent outbox rows and inbox rows past their retention; (outbox, inbox) counts."""
    now = timezone.now()
    outbox, _ = OutboxMessage.objects.filter(sent_at__lt=now - timedelta(seconds=settings.sent_retention)).delete()
    inbox, _ = InboxMessage.objects.filter(received_at__lt=now - timedelta(seconds=settings.inbox_retention)).delete()
    return outbox, inbox
