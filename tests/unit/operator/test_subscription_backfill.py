"""A subscription's backfill through the fake cluster and broker: asked for, answered, reported, never done early."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from opscene import NOW, NS, SETTINGS, Scene, condition, message

from rabbitsync.amqp import BrokerUser, UserLimits, rights_for
from rabbitsync.amqp.backfill import FakeBackfill, Report
from rabbitsync.amqp.fake import FakeQueue
from rabbitsync.api.syncsubscription import BACKFILL_ANNOTATION
from rabbitsync.events.backfill import BackfillReport, decode_report, encode
from rabbitsync.operator import backfill
from rabbitsync.operator.backfill_reconcile import RUNNING, due, follow
from rabbitsync.operator.outcome import ReconcileOutcome
from rabbitsync.operator.subscription import Subscription
from rabbitsync.topology import naming

pytestmark = pytest.mark.unit

EVENTS = ["R_CREATED", "R_DELETED"]
QUEUE = naming.queue_name("east", NS, "orders")
STATUS_QUEUE = naming.backfill_status_queue(QUEUE)
SUBSCRIBER = "rabbitsync.east.shop.orders"


def _publisher(scene: Scene, cluster: str, service: str, types: list[str], consumers: int = 1) -> str:
    """A service allowed to publish ``types`` (what its SyncPublication gave it), its sidecar running."""
    permissions, topic = rights_for(
        cluster=cluster, namespace=NS, exchange="rabbitsync.events", subscriptions=[], published=types, service=service
    )
    user = f"rabbitsync.{cluster}.{NS}.{service}"
    scene.broker.users[user] = BrokerUser(user, "pw", permissions, topic, UserLimits(64, 256))
    requests = user + naming.BACKFILL_REQUESTS_SUFFIX
    scene.broker.queues.setdefault(requests, FakeQueue({"x-queue-type": "quorum"}, consumers=consumers))
    return user


@dataclasses.dataclass
class Run:
    """A subscription reconciled again and again, each time with the status the last one wrote."""

    scene: Scene
    port: FakeBackfill
    sub: Subscription
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    outcome: ReconcileOutcome | None = None

    def step(self, after: timedelta = timedelta()) -> ReconcileOutcome:
        if self.outcome is not None:
            self.sub = dataclasses.replace(self.sub, status=self.outcome.status)
        outcome = self.scene.reconcile(self.sub)
        self.outcome = follow(
            outcome, self.sub, self.annotations, self.scene.kube, lambda _r: self.port, SETTINGS, now=NOW + after
        )
        return self.outcome

    @property
    def backfill(self) -> dict[str, Any]:
        assert self.outcome is not None
        return dict(self.outcome.status.get("backfill") or {})

    def requests(self, user: str) -> list[Any]:
        return self.port.requests.get(user + naming.BACKFILL_REQUESTS_SUFFIX, [])

    def report(
        self, request: str, sent: int, applied: int, *, by: str = SUBSCRIBER, at: timedelta = timedelta()
    ) -> None:
        body = encode(
            BackfillReport(request=request, run=f"{request}.r1", sent=sent, applied=applied, complete=applied >= sent)
        )
        self.port.reports.setdefault(STATUS_QUEUE, []).append(Report(by, body, int((NOW + at).timestamp())))


def _run(policy: str = "onCreate", **kwargs: Any) -> Run:
    scene = Scene.ready()
    return Run(scene, FakeBackfill(scene.broker), scene.subscribe(events=EVENTS, backfill=policy, **kwargs))


def test_on_create_asks_this_clusters_publisher_once_for_every_type_and_waits_for_the_report() -> None:
    run = _run()
    publisher = _publisher(run.scene, "east", "restaurant", EVENTS)
    _publisher(run.scene, "west", "restaurant", EVENTS)
    outcome = run.step()
    [request] = run.requests(publisher)
    assert (request.queue, request.types, request.namespace) == (QUEUE, tuple(EVENTS), NS)
    assert run.requests("rabbitsync.west.shop.restaurant") == []
    assert run.backfill["phase"] == "Running" and run.backfill["trigger"] == "onCreate"
    assert condition(outcome, "BackfillComplete") == ("False", "Running")
    assert condition(outcome, "Ready") == ("True", "TopologyVerified")
    assert outcome.temporary_failure == RUNNING, "a running backfill is looked at again soon"
    assert STATUS_QUEUE in run.scene.broker.queues
    run.step()
    assert len(run.requests(publisher)) == 1, "asked once, not on every step"


def test_complete_only_on_the_subscribers_own_word_that_every_event_is_applied() -> None:
    run = _run()
    publisher = _publisher(run.scene, "east", "restaurant", EVENTS)
    run.step()
    [request] = run.requests(publisher)
    run.report(request.id, sent=1900, applied=1900, by="rabbitsync.east.shop.restaurant")  # not the subscriber
    run.report("an-older-backfill", sent=5, applied=5)
    run.report(request.id, sent=1900, applied=1200)
    outcome = run.step()
    assert run.backfill["phase"] == "Running"
    assert (run.backfill["sent"], run.backfill["applied"]) == (1900, 1200)
    assert "1200 of 1900" in message(outcome, "BackfillComplete")
    run.report(request.id, sent=1900, applied=1900)
    outcome = run.step(timedelta(seconds=5))
    assert condition(outcome, "BackfillComplete") == ("True", "Complete")
    assert run.backfill["phase"] == "Complete" and run.backfill["completedAt"] == "2026-11-29T12:00:05Z"
    assert outcome.temporary_failure is None
    assert STATUS_QUEUE in run.scene.broker.queues, "kept: a step may yet start from an older status"
    again = run.step()
    assert condition(again, "BackfillComplete") == ("True", "Complete") and again.notes == []
    assert run.port.reports[STATUS_QUEUE] and all(r.user_id == SUBSCRIBER for r in run.port.reports[STATUS_QUEUE]), (
        "the reports never to believe are removed; the subscriber's are kept"
    )


def test_a_step_from_an_older_status_than_the_last_written_still_sees_the_backfill_complete() -> None:
    """The resync timer and a retried change handler each hold a body without the other's last patch:
    the one that runs second starts from the status before the first one's. It must not write the
    backfill back to Running (it used to, for good: the first had taken the report and deleted the queue)."""
    run = _run()
    publisher = _publisher(run.scene, "east", "restaurant", EVENTS)
    running = run.step()
    [request] = run.requests(publisher)
    run.report(request.id, sent=1900, applied=1900)
    first = run.step()
    assert condition(first, "BackfillComplete") == ("True", "Complete")
    run.outcome = running  # the second handler's body: the status before the first's patch
    second = run.step(timedelta(seconds=1))
    assert condition(second, "BackfillComplete") == ("True", "Complete")
    assert run.backfill["phase"] == "Complete" and run.backfill["applied"] == 1900
    assert len(run.requests(publisher)) == 1, "nothing asked twice"


def test_a_status_queue_lost_mid_backfill_asks_every_publisher_again_and_never_claims_done() -> None:
    run = _run()
    publisher = _publisher(run.scene, "east", "restaurant", EVENTS)
    run.step()
    [first] = run.requests(publisher)
    del run.scene.broker.queues[STATUS_QUEUE]  # deleted by hand, or lost with the broker's data
    run.report(first.id, sent=1900, applied=1900)  # what the sidecar sent meanwhile: dropped, no queue
    outcome = run.step()
    assert condition(outcome, "BackfillComplete") == ("False", "Running") and run.backfill["phase"] == "Running"
    assert STATUS_QUEUE in run.scene.broker.queues, "declared again before the new request"
    [_, second] = run.requests(publisher)
    assert [r["request"] for r in run.backfill["requests"]] == [second.id]
    run.report(second.id, sent=1900, applied=1900)
    assert condition(run.step(), "BackfillComplete") == ("True", "Complete")


def test_the_status_queue_goes_with_the_subscription() -> None:
    run = _run()
    _publisher(run.scene, "east", "restaurant", EVENTS)
    run.step()
    assert STATUS_QUEUE in run.scene.broker.queues
    deleted = run.scene.delete(run.sub)
    assert deleted.done and STATUS_QUEUE not in run.scene.broker.queues


def test_the_other_cluster_answers_for_the_types_this_one_lacks_and_never_the_subscriber_itself() -> None:
    run = _run()
    run.sub = run.scene.subscribe(events=EVENTS, backfill="onCreate", service="orders")
    _publisher(run.scene, "east", "orders", EVENTS)  # the subscribing service itself: no seed of its own copy
    menu = _publisher(run.scene, "east", "menu", EVENTS[1:])
    twin = _publisher(run.scene, "west", "orders", EVENTS)
    run.step()
    assert [r.types for r in run.requests(menu)] == [tuple(EVENTS[1:])]
    assert [r.types for r in run.requests(twin)] == [tuple(EVENTS[:1])]
    assert run.requests(SUBSCRIBER) == []


def test_a_type_nobody_publishes_is_named_and_asked_for_once_a_publisher_appears() -> None:
    run = _run()
    outcome = run.step()
    assert condition(outcome, "BackfillComplete") == ("False", "NoPublisher")
    assert "R_CREATED, R_DELETED" in message(outcome, "BackfillComplete")
    assert run.backfill["phase"] == "Pending" and run.backfill["missing"] == EVENTS
    publisher = _publisher(run.scene, "west", "restaurant", EVENTS)
    outcome = run.step()
    assert len(run.requests(publisher)) == 1
    assert condition(outcome, "BackfillComplete") == ("False", "Running") and run.backfill["missing"] == []


def test_a_request_nobody_takes_is_publisher_not_responding_after_the_grace() -> None:
    run = _run()
    publisher = _publisher(run.scene, "east", "restaurant", EVENTS, consumers=0)
    assert condition(run.step(), "BackfillComplete") == ("False", "Running")
    late = run.step(timedelta(seconds=SETTINGS.backfill_response_seconds + 1))
    assert condition(late, "BackfillComplete") == ("False", "PublisherNotResponding")
    assert publisher in message(late, "BackfillComplete")
    run.scene.broker.queues[publisher + naming.BACKFILL_REQUESTS_SUFFIX].consumers = 1  # its sidecar starts
    taken = run.step(timedelta(minutes=5))
    assert condition(taken, "BackfillComplete") == ("False", "Running"), "taken: maybe a large table, not judged"
    assert f"{publisher} took the request" in message(taken, "BackfillComplete")
    del run.scene.broker.queues[publisher + naming.BACKFILL_REQUESTS_SUFFIX]  # its last SyncPublication went
    gone = run.step(timedelta(minutes=6))
    assert condition(gone, "BackfillComplete") == ("False", "PublisherNotResponding")
    assert "is gone" in message(gone, "BackfillComplete")


def test_a_broker_away_mid_backfill_keeps_what_was_asked_and_claims_nothing() -> None:
    run = _run()
    publisher = _publisher(run.scene, "east", "restaurant", EVENTS)
    run.step()
    run.scene.broker.reachable = False
    outcome = follow(
        run.outcome or ReconcileOutcome({}),
        dataclasses.replace(run.sub, status=(run.outcome or ReconcileOutcome({})).status),
        {},
        run.scene.kube,
        lambda _r: run.port,
        SETTINGS,
        now=NOW,
    )
    assert condition(outcome, "BackfillComplete") == ("False", "BrokerError")
    assert outcome.status["backfill"]["phase"] == "Running" and len(outcome.status["backfill"]["requests"]) == 1
    run.outcome = outcome
    run.scene.broker.reachable = True
    [request] = run.requests(publisher)
    run.report(request.id, sent=3, applied=3)
    assert condition(run.step(), "BackfillComplete") == ("True", "Complete")
    assert len(run.requests(publisher)) == 1, "nothing asked twice"


def test_none_asks_nothing_and_an_existing_subscription_is_not_backfilled_by_on_create() -> None:
    run = _run(policy="none")
    _publisher(run.scene, "east", "restaurant", EVENTS)
    outcome = run.step()
    assert "backfill" not in outcome.status and "BackfillComplete" not in str(outcome.status["conditions"])
    existing = _run()
    existing.sub = dataclasses.replace(existing.sub, status={"queue": QUEUE})  # set up before the upgrade
    existing.step()
    assert "backfill" not in (existing.outcome or ReconcileOutcome({})).status


def test_each_new_annotation_value_asks_anew_and_the_same_value_does_not() -> None:
    run = _run(policy="none")
    publisher = _publisher(run.scene, "east", "restaurant", EVENTS)
    run.annotations[BACKFILL_ANNOTATION] = "2026-11-30T06:00:00Z"
    run.step()
    [first] = run.requests(publisher)
    run.report(first.id, sent=2, applied=2)
    assert condition(run.step(), "BackfillComplete") == ("True", "Complete")
    run.step()
    assert len(run.requests(publisher)) == 1
    run.annotations[BACKFILL_ANNOTATION] = "2026-11-30T07:00:00Z"  # the database was restored
    outcome = run.step()
    assert len(run.requests(publisher)) == 2
    assert condition(outcome, "BackfillComplete") == ("False", "Running")
    run.report(first.id, sent=2, applied=2)  # the first backfill's report again: not this one's
    assert run.step().status["backfill"]["phase"] == "Running"
    kept = [decode_report(r.body).request for r in run.port.reports[STATUS_QUEUE]]
    assert first.id in kept, "recent: a step may lag behind the backfill it belongs to"
    run.step(timedelta(seconds=backfill.OTHER_REPORTS_KEPT_SECONDS + 1))
    assert run.port.reports[STATUS_QUEUE] == [], "an earlier backfill's reports go after a while"


def test_choose_prefers_this_cluster_then_names_the_types_nobody_publishes() -> None:
    sub = backfill.Subscriber("east", NS, "copy", "delivery", QUEUE, ("A", "B", "C"))
    writers = {
        "rabbitsync.west.shop.r": "^(shop\\.(A|B))(\\.@backfill\\..+)?$",
        "rabbitsync.east.shop.r": "^(shop\\.(A))(\\.@backfill\\..+)?$",
        "rabbitsync.east.other.r": "^(other\\.(C))$",
        "rabbitsync.east.shop.delivery": "^(shop\\.(C))$",
        "guest": ".*",
        "rabbitsync.east.shop.broken": "(",
    }
    chosen, missing = backfill.choose(["A", "B", "C"], writers, sub)
    assert chosen == {"rabbitsync.east.shop.r": ["A"], "rabbitsync.west.shop.r": ["B"]}
    assert missing == ["C"]


def test_a_services_request_queue_goes_with_its_last_publication() -> None:
    scene = Scene.ready()
    requests = naming.backfill_request_queue("east", NS, "orders")
    scene.broker.queues[requests] = FakeQueue({"x-queue-type": "quorum"})  # a backfill asked the service once
    first, second = scene.publish("a"), scene.publish("b", events=["ORDER_PAID"])
    for pub in (first, second):
        scene.reconcile_publication(pub)
    assert scene.delete_publication(first).done and requests in scene.broker.queues, "it still publishes"
    assert scene.delete_publication(second).done and requests not in scene.broker.queues


def test_a_running_backfill_and_an_annotation_not_acted_on_are_resynced_every_interval_not_every_refresh() -> None:
    """No change handler sees the annotation (kopf leaves out its own storage prefix, ``rabbitsync.io/``):
    only a resync does, so a Ready subscription asked for a backfill must not wait for its next refresh."""
    done = {"backfill": {"trigger": "t1", "phase": "Complete"}}
    assert not due({}, {}) and not due(done, {BACKFILL_ANNOTATION: "t1"})
    assert due(done, {BACKFILL_ANNOTATION: "t2"}) and due({}, {BACKFILL_ANNOTATION: "t1"})
    assert due({"backfill": {"trigger": "onCreate", "phase": "Running"}}, {})
