"""Django admin pages for the outbox and the inbox, where a developer looks first.

Registered when ``django.contrib.admin`` is installed (it imports every app's ``admin`` module).

- **Outbox**: every event this service wrote, with its state (*pending*, *in flight* under a relay's
  lease, *sent*, or *failing*: unsent after more than one publish attempt, this side's dead letters)
  and its decoded body. Action *send again*: clears ``sent_at`` and the lease, so the relay sends the
  row once more (the consumers' inbox makes that harmless).
- **Inbox**: every event this service applied, by type and source. Read-only: deleting a row would let
  a redelivery apply the event twice.

The broker's dead-letter queues are not database state; ``rabbitsync dlq list|show|replay`` reads them
without counting a delivery. The admin shows what the database knows.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from rabbitsync.django.models import InboxMessage, OutboxMessage

if TYPE_CHECKING:
    OutboxModelAdmin = admin.ModelAdmin[OutboxMessage]
    InboxModelAdmin = admin.ModelAdmin[InboxMessage]
else:  # ModelAdmin is generic in django-stubs only
    OutboxModelAdmin = InboxModelAdmin = admin.ModelAdmin

PENDING, IN_FLIGHT, SENT, FAILING = "pending", "in flight", "sent", "failing"


def outbox_state(row: OutboxMessage) -> str:
    if row.sent_at is not None:
        return SENT
    if row.lease_until is not None and row.lease_until > timezone.now():
        return IN_FLIGHT
    return FAILING if row.publish_attempts > 1 else PENDING


class OutboxStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: OutboxModelAdmin) -> list[tuple[str, str]]:
        return [(PENDING, "pending"), (IN_FLIGHT, "in flight"), (FAILING, "failing"), (SENT, "sent")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> QuerySet[OutboxMessage]:
        leased = Q(lease_until__gt=timezone.now())
        unsent = queryset.filter(sent_at__isnull=True)
        by_state = {
            SENT: queryset.filter(sent_at__isnull=False),
            IN_FLIGHT: unsent.filter(leased),
            FAILING: unsent.exclude(leased).filter(publish_attempts__gt=1),
            PENDING: unsent.exclude(leased).filter(publish_attempts__lte=1),
        }
        return by_state.get(self.value() or "", queryset)


@admin.register(OutboxMessage)
class OutboxAdmin(OutboxModelAdmin):
    list_display = ("event_id", "type", "state", "created_at", "sent_at", "publish_attempts")
    list_filter = (OutboxStateFilter, "type")
    search_fields = ("event_id", "type")
    date_hierarchy = "created_at"
    ordering = ("-pk",)
    fields = ("event_id", "type", "state", "created_at", "sent_at", "publish_attempts", "lease_until", "event")
    readonly_fields = fields
    actions = ("send_again",)

    @admin.display(description="state")
    def state(self, row: OutboxMessage) -> str:
        return outbox_state(row)

    @admin.display(description="event")
    def event(self, row: OutboxMessage) -> SafeString:
        try:
            text = json.dumps(json.loads(bytes(row.body)), indent=2, sort_keys=True)
        except ValueError:
            text = repr(bytes(row.body)[:2000])
        return format_html("<pre>{}</pre>", text)

    # Every field is read-only: this action is the one change the page makes.
    @admin.action(description="Send again (the consumers' inbox skips what they applied)", permissions=["change"])
    def send_again(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        count = queryset.update(sent_at=None, lease_owner="", lease_until=None)
        self.message_user(request, f"{count} event(s) will be sent again by the relay's next sweep.")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(InboxMessage)
class InboxAdmin(InboxModelAdmin):
    list_display = ("event_id", "type", "source", "received_at")
    list_filter = ("type", "source")
    search_fields = ("event_id", "type", "source")
    date_hierarchy = "received_at"
    ordering = ("-received_at",)
    readonly_fields = ("event_id", "type", "source", "received_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: InboxMessage | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: InboxMessage | None = None) -> bool:
        return False
