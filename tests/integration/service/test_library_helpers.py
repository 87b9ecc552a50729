"""The app developer's tools on a real Django and database, no broker: rabbitsync.django.testing,
several handlers per type, traceparent from event to handler to the next publish, system checks."""

from __future__ import annotations

import pytest
from conftest import NAMESPACE

pytestmark = pytest.mark.integration

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
SETTINGS = {"CLUSTER": "c1", "NAMESPACE": NAMESPACE, "SERVICE": "consumer"}


@pytest.fixture
def library(django_project, database):
    from django.test import override_settings
    from svcapp.models import Effect

    from rabbitsync.django.models import InboxMessage, OutboxMessage

    for model in (OutboxMessage, InboxMessage, Effect):
        model.objects.all().delete()
    with override_settings(RABBITSYNC=SETTINGS):  # no AMQP_URL: events stay in the outbox
        yield


def effects(event_id: str) -> list[str]:
    from svcapp.models import Effect

    return list(Effect.objects.filter(event_id=event_id).order_by("pk").values_list("subject", flat=True))


@pytest.mark.parametrize("database", ["sqlite", "postgres"], indirect=True)
def test_captured_events_hold_what_committed_in_order_and_nothing_rolled_back(library):
    from django.db import transaction

    from rabbitsync.django import publish
    from rabbitsync.django.testing import captured_events

    with captured_events() as published:
        publish("svc.effect", {"n": 1}, subject="a")
        with pytest.raises(RuntimeError), transaction.atomic():
            publish("svc.effect", {"n": 2}, subject="rolled-back")
            raise RuntimeError("the view failed")
        publish("svc.entity", {"n": 3}, subject="b")
    assert published.types() == ["svc.effect", "svc.entity"]
    assert published.one("svc.effect").subject == "a"
    with pytest.raises(AssertionError, match=r"expected one svc.flaky event, published: \['svc.effect'"):
        published.one("svc.flaky")
    with captured_events() as nothing:
        pass
    nothing.assert_nothing_published()


def test_deliver_runs_every_handler_of_the_type_in_one_transaction(library):
    from rabbitsync.django.inbox import Outcome
    from rabbitsync.django.testing import deliver, make_event

    event = make_event("svc.fanout", {})
    assert deliver(event) is Outcome.APPLIED
    assert effects(event.id) == ["first", "second"]
    assert deliver(event) is Outcome.DUPLICATE
    assert effects(event.id) == ["first", "second"]

    failing = make_event("svc.fanout", {"fail_second": True})
    with pytest.raises(RuntimeError, match="second handler failed"):
        deliver(failing)
    assert effects(failing.id) == []  # the first handler's write rolled back with the second's failure
    assert deliver(make_event("svc.fanout", {})) is Outcome.APPLIED  # and nothing recorded it as applied


def test_the_events_traceparent_reaches_the_handler_and_what_it_publishes(library):
    from rabbitsync.django.testing import captured_events, deliver, make_event

    event = make_event("svc.traced", {"follow_up": True}, extensions={"traceparent": TRACEPARENT})
    with captured_events() as published:
        deliver(event)
    assert effects(event.id) == [TRACEPARENT]
    assert published.one("svc.effect", subject="follow-up").traceparent == TRACEPARENT

    untraced = make_event("svc.traced", {"follow_up": True})
    with captured_events() as published:
        deliver(untraced)
    assert effects(untraced.id) == [""]
    assert published.one("svc.effect").extensions == {}


def test_system_checks_report_misconfiguration_by_id(library):
    from django.core.checks import run_checks
    from django.test import override_settings

    def ids(**rabbitsync):
        with override_settings(RABBITSYNC=rabbitsync):
            return sorted(m.id for m in run_checks() if m.id and m.id.startswith("rabbitsync."))

    assert ids(**SETTINGS, AMQP_URL="amqp://u:p@127.0.0.1:5672/%2F") == []
    assert ids(**SETTINGS, AMQP_URL="http://u:secret@broker/") == ["rabbitsync.W005"]
    assert ids() == ["rabbitsync.W001", "rabbitsync.W004"]
    assert ids(NOT_A_SETTING=1) == ["rabbitsync.E001"]


@pytest.mark.parametrize("database", ["sqlite", "postgres"], indirect=True)
def test_a_request_keeps_its_database_connection_for_the_next_one(library):
    """Closed at every request's end, SQLite was reopened by the next (and, the file's last connection
    closing, checkpointed its WAL): four fsyncs per POST of the example services."""
    from django.core.signals import request_finished, request_started
    from django.db import connection
    from svcapp.models import Effect

    request_started.send(sender=None)
    Effect.objects.count()
    opened = connection.connection
    request_finished.send(sender=None)
    request_started.send(sender=None)
    Effect.objects.count()
    assert connection.connection is opened is not None
    request_finished.send(sender=None)
