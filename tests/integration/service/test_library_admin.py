"""The admin pages of the outbox and the inbox: listed, filtered by state, read, and sent again."""

from __future__ import annotations

import pytest
from conftest import NAMESPACE

pytestmark = pytest.mark.integration


def text(response) -> str:
    return response.content.decode()  # not response.text: Django 5.0 added it, 4.2 is supported


@pytest.fixture
def admin_client(django_project, database):
    from django.contrib.auth.models import User
    from django.test import Client, override_settings

    from rabbitsync.django.models import InboxMessage, OutboxMessage

    for model in (OutboxMessage, InboxMessage, User):
        model.objects.all().delete()
    user = User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(user)
    with override_settings(RABBITSYNC={"CLUSTER": "c1", "NAMESPACE": NAMESPACE, "SERVICE": "publisher"}):
        yield client


def test_outbox_pages_show_state_and_body_and_send_again(admin_client):
    from django.utils import timezone

    from rabbitsync.django import publish
    from rabbitsync.django.models import OutboxMessage

    pending = publish("svc.effect", {"price": 1234}, subject="pending-one")
    sent = publish("svc.effect", {}, subject="sent-one")
    failing = publish("svc.entity", {}, subject="failing-one")
    OutboxMessage.objects.filter(event_id=sent.id).update(sent_at=timezone.now())
    OutboxMessage.objects.filter(event_id=failing.id).update(publish_attempts=4)

    page = admin_client.get("/admin/rabbitsync/outboxmessage/")
    assert page.status_code == 200
    assert all(e.id in text(page) for e in (pending, sent, failing))
    for state, shown, hidden in [("failing", failing, pending), ("pending", pending, sent), ("sent", sent, failing)]:
        page = admin_client.get("/admin/rabbitsync/outboxmessage/", {"state": state})
        assert shown.id in text(page) and hidden.id not in text(page), state

    row = OutboxMessage.objects.get(event_id=pending.id)
    detail = admin_client.get(f"/admin/rabbitsync/outboxmessage/{row.pk}/change/")
    assert detail.status_code == 200
    assert "1234" in text(detail) and "pending-one" in text(detail)

    sent_row = OutboxMessage.objects.get(event_id=sent.id)
    done = admin_client.post(
        "/admin/rabbitsync/outboxmessage/", {"action": "send_again", "_selected_action": [sent_row.pk]}, follow=True
    )
    assert done.status_code == 200 and "will be sent again" in text(done)
    sent_row.refresh_from_db()
    assert sent_row.sent_at is None
    assert admin_client.get("/admin/rabbitsync/outboxmessage/add/").status_code == 403


def test_inbox_pages_list_applied_events_read_only(admin_client):
    from rabbitsync.django.models import InboxMessage
    from rabbitsync.django.testing import deliver, make_event

    event = make_event("svc.effect", {}, subject="applied")
    deliver(event)
    page = admin_client.get("/admin/rabbitsync/inboxmessage/", {"type": "svc.effect"})
    assert page.status_code == 200 and event.id in text(page)
    detail = admin_client.get(f"/admin/rabbitsync/inboxmessage/{event.id}/change/")
    assert detail.status_code == 200 and event.source in text(detail)
    assert admin_client.post(f"/admin/rabbitsync/inboxmessage/{event.id}/delete/").status_code == 403
    assert InboxMessage.objects.filter(event_id=event.id).exists()
