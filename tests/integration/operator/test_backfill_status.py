"""A backfill run by the operators against a real API server and broker: asked of the other cluster's
publisher, followed in the status, complete only on the subscriber's own confirmed word.

The subscriber's sidecar is played by this test with the service's own credentials (the Secret the
operator wrote), which is exactly what the operator believes; the sidecar's side is proven in
``tests/integration/service/test_service_backfill.py``.
"""

from __future__ import annotations

import time
from typing import Any

import pika
import pytest
from opkit import CONVERGE, GROUP, RESYNC_SECONDS, VERSION, Kit, wait_for

from rabbitsync.api.syncsubscription import BACKFILL_ANNOTATION
from rabbitsync.events.backfill import BackfillReport, BackfillRequest, decode_request, encode
from rabbitsync.topology import naming

pytestmark = pytest.mark.integration


def _backfill(kit: Kit, name: str) -> dict[str, Any]:
    return dict(((kit.get("east", name) or {}).get("status") or {}).get("backfill") or {})


def _report(uri: str, queue: str, report: BackfillReport, user_id: str | None) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("", queue, encode(report), pika.BasicProperties(user_id=user_id, delivery_mode=2))
    finally:
        connection.close()


def test_the_other_clusters_publisher_answers_and_the_status_completes_on_the_subscribers_word(kit: Kit) -> None:
    kit.setup_broker("east")
    kit.setup_broker("west")
    kit.create_publication("west", "restaurant", ["R_UPDATED"])
    publisher = kit.broker_user("west", "restaurant")
    wait_for(
        lambda: "R_UPDATED" in str(kit.mgmt.call("GET", f"/api/users/{kit.mgmt.q(publisher)}/topic-permissions")),
        CONVERGE,
        "the west publisher's rights",
    )
    kit.create_subscription("east", "copy", ["R_UPDATED"], backfill="onCreate")
    running = wait_for(lambda: (b := _backfill(kit, "copy")).get("phase") == "Running" and b, CONVERGE, "requested")
    [entry] = running["requests"]
    assert entry["publisher"] == publisher, "east has no publisher of R_UPDATED: west's answers"
    assert kit.condition(kit.get("east", "copy"), "BackfillComplete")["reason"] in ("Running", "PublisherNotResponding")

    requests = publisher + naming.BACKFILL_REQUESTS_SUFFIX
    request = _take_request(kit, requests)
    queue = kit.queue_name("east", "copy")
    assert (request.id, request.queue, request.types) == (entry["request"], queue, ("R_UPDATED",))

    # The status queue lost mid-run (by hand here; a broker losing its data alike): the reports the
    # sidecar sent meanwhile may be gone, so the operator asks again rather than wait for ever.
    status_queue = naming.backfill_status_queue(queue)
    kit.mgmt.delete_queue(status_queue)
    request = _take_request(kit, requests)
    assert request.id != entry["request"]
    wait_for(lambda: _backfill(kit, "copy")["requests"][0]["request"] == request.id, CONVERGE, "asked again")
    assert _backfill(kit, "copy")["phase"] == "Running" and status_queue in kit.mgmt.queues(status_queue)
    own = wait_for(lambda: kit.service_secret("east", "copy"), CONVERGE, "the subscriber's Secret")["uri"]
    done = BackfillReport(request=request.id, run=f"{request.id}.r", sent=7, applied=7, complete=True)
    _report(kit.broker.amqp_url, status_queue, done, user_id=None)  # anyone else's word: not believed
    _report(
        own, status_queue, done.model_copy(update={"applied": 3, "complete": False}), kit.broker_user("east", "copy")
    )
    wait_for(lambda: _backfill(kit, "copy").get("applied") == 3, CONVERGE, "the partial report in the status")
    assert _backfill(kit, "copy")["phase"] == "Running"
    _report(own, status_queue, done, kit.broker_user("east", "copy"))
    complete = wait_for(lambda: (b := _backfill(kit, "copy")).get("phase") == "Complete" and b, CONVERGE, "complete")
    assert (complete["sent"], complete["applied"]) == (7, 7) and complete.get("completedAt")
    condition = kit.condition(kit.get("east", "copy"), "BackfillComplete")
    assert (condition["status"], condition["reason"]) == ("True", "Complete")
    time.sleep(2 * RESYNC_SECONDS)  # resyncs and retried reconciles, some from an older body, come and go
    assert _backfill(kit, "copy")["phase"] == "Complete", "no later reconcile took the completion back"
    assert status_queue in kit.mgmt.queues(status_queue), "kept while the subscription exists"

    # Asked again by the annotation (`kubectl annotate`, `rabbitsync backfill`) on a Ready subscription:
    # no change handler sees it (kopf's own prefix), the resync must, within an interval, not a refresh.
    kit.custom("east").patch_namespaced_custom_object(
        GROUP,
        VERSION,
        kit.namespace,
        "syncsubscriptions",
        "copy",
        {"metadata": {"annotations": {BACKFILL_ANNOTATION: "again"}}},
    )
    again = _take_request(kit, requests)
    assert wait_for(lambda: _backfill(kit, "copy").get("trigger") == "again", CONVERGE, "the new trigger")
    assert _backfill(kit, "copy")["requests"][0]["request"] == again.id
    kit.delete_subscription("east", "copy")
    kit.wait_gone("east", "copy")
    assert status_queue not in kit.mgmt.queues(status_queue), "deleted with the subscription's queues"
    kit.delete_publication("west", "restaurant")


def _take_request(kit: Kit, requests: str) -> BackfillRequest:
    """The next request in the publisher's queue, taken as its sidecar would (waiting for it to come)."""

    def take() -> BackfillRequest | None:
        connection = pika.BlockingConnection(pika.URLParameters(kit.broker.amqp_url))
        try:
            method, _props, body = connection.channel().basic_get(requests, auto_ack=True)
        finally:
            connection.close()
        return None if method is None else decode_request(body)

    return wait_for(take, CONVERGE, "a backfill request")
