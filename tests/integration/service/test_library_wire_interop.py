"""A service in another language can join: an event built with the official CloudEvents SDK (plus our
``rabbitsyncversion``), carrying a ``traceparent``, published with plain pika, is applied by the real
sidecar, and the handler runs in the publisher's trace. The wire format is docs/wire-format.md."""

from __future__ import annotations

import pika
import pytest
from cloudevents.core.bindings.rabbitmq import to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from conftest import NAMESPACE, channel, make_spec, user_url, wait_until

from rabbitsync.conventions import broker_username, routing_key
from rabbitsync.events import Origin

pytestmark = pytest.mark.integration

FOREIGN = Origin("c2", NAMESPACE, "publisher")
"""The publishing service, written in anything: it only needs its broker user and the wire format."""
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_an_event_from_the_cloudevents_sdk_published_with_pika_is_applied_in_its_trace(service, uid, sidecars):
    from svcapp.models import Effect

    spec = service.declare(make_spec(uid, ["svc.traced"]))
    sidecar = sidecars(spec).wait_ready()
    event = CloudEvent(
        attributes={
            "type": "svc.traced",
            "source": FOREIGN.source,
            "subject": "from-the-sdk",
            "rabbitsyncversion": 1,
            "traceparent": TRACEPARENT,
        },
        data={"note": "no rabbitsync code made this"},
    )
    message = to_structured(event, JSONFormat())
    with channel(user_url(service.identities, FOREIGN)) as ch:
        ch.confirm_delivery()
        ch.basic_publish(
            service.exchange,
            routing_key(NAMESPACE, event.get_type()),
            message.body,
            pika.BasicProperties(
                content_type=message.content_type,
                delivery_mode=2,
                message_id=event.get_id(),
                user_id=broker_username(*FOREIGN),
            ),
        )
    wait_until(lambda: Effect.objects.filter(event_id=event.get_id()).exists(), 15, "the SDK's event applied")
    assert Effect.objects.get(event_id=event.get_id()).subject == TRACEPARENT
    assert sidecar.metric("rabbitsync_applied_total") == 1
    assert service.depth(spec.dead_letter_queue) == 0
