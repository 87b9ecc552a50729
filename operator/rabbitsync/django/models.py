"""The outbox (events waiting to leave), the inbox (events already applied) and the LWW base model."""

from __future__ import annotations

from django.db import models


class OutboxMessage(models.Model):
    """An event written in the publisher's transaction; the relay sends it after the commit.

    ``lease_*`` let several relays (the web process's, the sidecar's) share the table without
    sending a row twice in the normal case: a relay claims rows for ``relay_lease`` seconds in a
    short transaction, publishes, then marks them sent. A relay that dies leaves its lease to
    expire, and the row is sent again — at-least-once, deduplicated by the consumers' inbox.

    A row the broker refuses backs off on its own (``next_attempt_at``) while the rows behind it go
    on; ``publish_attempts`` counts those refusals (a broker that is away costs none). After
    ``relay_max_attempts`` refusals, or at once when it is too large to ever be sent, the row is
    *parked*: ``parked_at`` and ``park_reason`` say when and why, and the relay skips it for good.
    Parked rows are kept (never purged) until a person deals with them.
    """

    event_id = models.CharField(max_length=128, unique=True)
    type = models.CharField(max_length=255)
    body = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=32, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    publish_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    parked_at = models.DateTimeField(null=True, blank=True)
    park_reason = models.TextField(blank=True, default="")

    class Meta:
        db_table = "rabbitsync_outbox"
        indexes = [
            # The relay's question is "what is unsent", asked every sweep; sent rows are the bulk.
            models.Index(fields=["sent_at", "id"], name="rabbitsync_outbox_unsent"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class InboxMessage(models.Model):
    """An event this service applied (or deliberately skipped); the key of exactly-once effects."""

    event_id = models.CharField(max_length=128, primary_key=True)
    type = models.CharField(max_length=255)
    source = models.CharField(max_length=512)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "rabbitsync_inbox"
        indexes = [models.Index(fields=["received_at"], name="rabbitsync_inbox_received")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class VersionedModel(models.Model):
    """Base for replicated entities written with :func:`rabbitsync.django.lww.lww_upsert`.

    ``sync_version`` and ``sync_source`` are the winning write's version and origin; together they
    order every write to the row the same way in every cluster.
    """

    sync_version = models.BigIntegerField(default=0)
    sync_source = models.CharField(max_length=512, default="", blank=True)

    class Meta:
        abstract = True
