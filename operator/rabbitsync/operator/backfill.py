"""Running a subscription's backfill: when one is asked for, who answers, and what the status says.

A backfill is asked for by ``spec.backfill: onCreate`` (once, when the subscription is first set up)
or by a new value of the ``rabbitsync.io/backfill`` annotation (``kubectl annotate``, ``rabbitsync
backfill``). Each step (every reconcile of the subscription while one runs) does three things:

1. asks a publisher for every type not asked for yet: one request per publisher, in its request
   queue. The publisher of a type is a service whose broker user may publish it in this namespace
   (what its SyncPublication declared): this cluster's first (never the subscribing service itself,
   which cannot seed its own copy), else the other cluster's, so a new cluster is seeded by the old;
2. reads the subscribing sidecar's reports in the subscription's status queue, believing only
   those its own broker user published (the broker checks ``user_id``), about requests of this
   backfill (an older backfill's late reports are dropped);
3. says where it stands: ``status.backfill`` (requested, events sent and applied per publisher) and
   the ``BackfillComplete`` condition: True once every publisher's run is reported complete, else
   ``Running``, ``NoPublisher`` (a type nobody publishes: asked again each step, a publisher may come),
   ``PublisherNotResponding`` (after ``response_seconds`` without a report, a request queue that no
   sidecar consumes, or that is gone) or the broker's error. A request taken but not answered by then
   stays ``Running``, its publisher named: a large table and a request that could not be served look
   the same from here.

Why this is safe to interrupt anywhere: the requests and reports live in durable queues; a publisher
that dies mid-run leaves its request unacknowledged and the next sidecar serves a new run; a
subscriber's sidecar reports "complete" only once its inbox holds every event of a run, confirmed
before it acks the end marker (so a kill in between reports again); and nothing here marks a request
complete but such a report. Reports are read, never taken: they stay in the status queue (until
``OTHER_REPORTS_KEPT_SECONDS`` after they were sent if they concern none of the backfill's requests,
else until the subscription's cleanup deletes the queue), so every step recomputes the same state
from them, whatever ``previous`` it was given. That matters: a state the operator could not write
(an API server away) is lost, and the resync timer and a retried change handler each start from a
body without the other's last patch, so a step may well begin from an older status than the one
last written. (Taking the reports, and deleting the queue once complete, let such a step overwrite
``Complete`` with ``Running`` for good.) A status queue missing while requests are out may have lost
reports with it: the backfill then asks every publisher again.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rabbitsync.amqp.backfill import BackfillBroker, Report
from rabbitsync.api.conditions import format_time
from rabbitsync.api.syncsubscription import (
    BACKFILL_ANNOTATION,
    BACKFILL_COMPLETE,
    BackfillRequestStatus,
    BackfillStatus,
)
from rabbitsync.conventions import broker_username, routing_key
from rabbitsync.events import InvalidEvent
from rabbitsync.events.backfill import BackfillReport, BackfillRequest, decode_report
from rabbitsync.operator import status as st
from rabbitsync.topology import naming
from rabbitsync.transport.errors import BrokerError

log = logging.getLogger(__name__)

ON_CREATE = "onCreate"
"""The trigger recorded for the backfill ``spec.backfill: onCreate`` asked for."""
OTHER_REPORTS_KEPT_SECONDS = 3600.0
"""How long a report about none of the current backfill's requests stays in the status queue: far
longer than a step may lag behind the status last written (seconds), so none a backfill needs goes."""


@dataclass(frozen=True)
class Subscriber:
    """Who asks: the subscription, its service and its queue, in this cluster."""

    cluster: str
    namespace: str
    name: str
    service: str
    queue: str
    events: tuple[str, ...]

    @property
    def user(self) -> str:
        return broker_username(self.cluster, self.namespace, self.service)

    @property
    def status_queue(self) -> str:
        return naming.backfill_status_queue(self.queue)


@dataclass(frozen=True)
class Step:
    """One step's result: the new ``status.backfill`` (camelCase) and the condition to set."""

    status: dict[str, Any]
    observation: st.Observation
    running: bool
    """Not complete yet: look again soon."""


def asked(
    previous: Mapping[str, Any] | None, annotations: Mapping[str, str], policy: str, first_setup: bool
) -> str | None:
    """The trigger of a new backfill asked for now, if any.

    ``first_setup``: the subscription had never been set up on the broker before this reconcile, so
    ``onCreate`` asks once, and an existing subscription that gains ``onCreate`` (or meets an upgraded
    operator) is not backfilled out of the blue.
    """
    if value := annotated(previous, annotations):
        return value
    if policy == ON_CREATE and previous is None and first_setup:
        return ON_CREATE
    return None


def annotated(previous: Mapping[str, Any] | None, annotations: Mapping[str, str]) -> str | None:
    """A value of the backfill annotation no backfill was asked for with yet."""
    value = annotations.get(BACKFILL_ANNOTATION)
    return value if value and (previous is None or value != previous.get("trigger")) else None


def running(previous: Mapping[str, Any] | None) -> bool:
    """A backfill was asked for and is not complete yet."""
    return previous is not None and previous.get("phase") != "Complete"


def step(
    sub: Subscriber,
    previous: Mapping[str, Any] | None,
    trigger: str | None,
    broker: BackfillBroker,
    *,
    exchange: str,
    now: datetime,
    response_seconds: float,
) -> Step | None:
    """Move the backfill on by one step; None when none was ever asked for."""
    if trigger is not None:
        state = BackfillStatus(trigger=trigger, phase="Pending", requested_at=format_time(now))
    elif previous is not None:
        state = BackfillStatus.model_validate(previous)
    else:
        return None
    if state.phase == "Complete":
        return Step(_dump(state), _complete(state), running=False)
    try:
        _ask(sub, state, broker, exchange)
        reports = broker.read_reports(sub.status_queue, _worthless(sub, state, now))
        if reports is None:
            _start_over(sub, state, broker, exchange)
            reports = []
        _read(sub, state, reports)
        if _total(state):
            state.completed_at = format_time(now)
            log.info("backfill of %s/%s complete: %d events", sub.namespace, sub.name, state.applied)
            return Step(_dump(state), _complete(state), running=False)
        observation = _waiting(state, broker, now, response_seconds)
    except BrokerError as e:
        observation = st.Observation(BACKFILL_COMPLETE, "False", "BrokerError", f"backfill waits for the broker: {e}")
    return Step(_dump(state), observation, running=True)


def choose(types: Iterable[str], writers: Mapping[str, str], sub: Subscriber) -> tuple[dict[str, list[str]], list[str]]:
    """Publisher user -> the types it is asked for, and the types nobody publishes.

    ``writers`` is every broker user's topic write permission (a regex of routing keys).
    """
    candidates = sorted(
        (user for user in writers if _publisher_of(user, sub)),
        key=lambda user: (not user.startswith(f"{naming.PREFIX}.{sub.cluster}."), user),
    )
    chosen: dict[str, list[str]] = {}
    missing: list[str] = []
    for event_type in types:
        key = routing_key(sub.namespace, event_type)
        user = next((u for u in candidates if _may_write(writers[u], key)), None)
        if user is None:
            missing.append(event_type)
        else:
            chosen.setdefault(user, []).append(event_type)
    return chosen, missing


def _publisher_of(user: str, sub: Subscriber) -> bool:
    """A service user of the subscriber's namespace, in any cluster, other than the subscriber itself."""
    parts = user.split(".")
    # rabbitsync.<cluster>.<namespace>.<service>: namespace and service are DNS labels, the cluster may hold dots.
    return len(parts) >= 4 and parts[0] == naming.PREFIX and parts[-2] == sub.namespace and user != sub.user


def _may_write(pattern: str, key: str) -> bool:
    try:
        return re.fullmatch(pattern, key) is not None
    except re.error:  # a permission we did not write: not a publisher we can judge
        return False


def _ask(sub: Subscriber, state: BackfillStatus, broker: BackfillBroker, exchange: str) -> None:
    """Send a request for every type not asked for yet; record each as soon as it is sent."""
    done = {t for r in state.requests for t in r.types}
    todo = [t for t in sub.events if t not in done]
    if not todo:
        state.missing = []
        return
    broker.open_reports(sub.status_queue)  # before any request: the first report must find it
    chosen, state.missing = choose(todo, broker.topic_writers(exchange), sub)
    for user, types in chosen.items():
        request = BackfillRequest(
            id=uuid.uuid4().hex,
            namespace=sub.namespace,
            queue=sub.queue,
            types=tuple(types),
            subscription=f"{sub.namespace}/{sub.name}",
        )
        broker.send_request(user + naming.BACKFILL_REQUESTS_SUFFIX, request)
        state.requests.append(BackfillRequestStatus(publisher=user, types=types, request=request.id))
        state.phase = "Running"
        log.info("backfill of %s/%s asked of %s for %s", sub.namespace, sub.name, user, ", ".join(types))


def _start_over(sub: Subscriber, state: BackfillStatus, broker: BackfillBroker, exchange: str) -> None:
    """The status queue is gone while requests are out (deleted by hand, lost with a broker's data):
    reports may have gone with it, so every publisher is asked again, into a status queue declared anew.
    A snapshot costs more than a wait, but a wait for a report that was lost would never end."""
    log.warning(
        "backfill of %s/%s: status queue %s missing, asking every publisher again",
        sub.namespace,
        sub.name,
        sub.status_queue,
    )
    state.requests = []
    _ask(sub, state, broker, exchange)


def _worthless(sub: Subscriber, state: BackfillStatus, now: datetime) -> Callable[[Report], bool]:
    """Which reports the status queue need not keep: those never to believe, and those about none of
    this backfill's requests sent long ago (an earlier backfill's). A recent one about an unknown
    request is kept: this step may start from an older status than the backfill it belongs to."""
    known = {r.request for r in state.requests}

    def worthless(report: Report) -> bool:
        found = _believed(sub, report)
        if found is None:
            return True
        sent = report.timestamp if report.timestamp is not None else 0
        return found.request not in known and now.timestamp() - sent > OTHER_REPORTS_KEPT_SECONDS

    return worthless


def _believed(sub: Subscriber, report: Report) -> BackfillReport | None:
    """What ``report`` says, if the subscriber's own broker user sent it; None for a report never to
    believe (the port then removes it: it is logged once, not on every step)."""
    if report.user_id != sub.user:
        log.warning("backfill report for %s dropped: published by %r", sub.status_queue, report.user_id)
        return None
    try:
        return decode_report(report.body)
    except InvalidEvent as e:
        log.warning("backfill report for %s dropped: %s", sub.status_queue, e)
        return None


def _read(sub: Subscriber, state: BackfillStatus, reports: Sequence[Report]) -> None:
    by_id = {r.request: r for r in state.requests}
    for found in filter(None, (_believed(sub, report) for report in reports)):
        entry = by_id.get(found.request)
        if entry is None or entry.complete:
            continue  # an older backfill's, or a repeat of a run already complete
        if found.complete or found.applied >= (entry.applied or 0):  # reports are read in no set order
            entry.sent, entry.applied, entry.complete = found.sent, found.applied, found.complete


def _total(state: BackfillStatus) -> bool:
    """Add the requests' counts up; True (and the phase Complete) once every request is complete."""
    state.sent = sum(r.sent or 0 for r in state.requests)
    state.applied = sum(r.applied or 0 for r in state.requests)
    if state.requests and not state.missing and all(r.complete for r in state.requests):
        state.phase = "Complete"
        return True
    return False


def _waiting(state: BackfillStatus, broker: BackfillBroker, now: datetime, response_seconds: float) -> st.Observation:
    if state.missing:
        return st.Observation(
            BACKFILL_COMPLETE,
            "False",
            "NoPublisher",
            f"no service publishes {', '.join(state.missing)} in this namespace, in any cluster",
        )
    silent = [r.publisher for r in state.requests if r.sent is None]
    late = ""
    if silent and _age(state, now) >= response_seconds:
        consumers = {p: broker.consumers(p + naming.BACKFILL_REQUESTS_SUFFIX) for p in silent}
        if not_responding := _not_responding(consumers):
            return st.Observation(BACKFILL_COMPLETE, "False", "PublisherNotResponding", not_responding)
        # Taken, not answered yet: a large table, or a request its sidecar could not serve. Only a
        # report tells them apart, so this is said, not judged.
        late = f"; {', '.join(silent)} took the request, no end marker has reached the subscriber yet"
    done = sum(1 for r in state.requests if r.complete)
    return st.Observation(
        BACKFILL_COMPLETE,
        "False",
        "Running",
        f"{done} of {len(state.requests)} publishers done; {state.applied} of {state.sent} events reported applied"
        + late,
    )


def _not_responding(consumers: Mapping[str, int | None]) -> str:
    """What ``PublisherNotResponding`` says it saw: request queues gone, or consumed by no sidecar."""
    gone = [p for p, count in consumers.items() if count is None]
    idle = [p for p, count in consumers.items() if count == 0]
    said = [f"the request queue of {', '.join(gone)} is gone (its last SyncPublication deleted?)"] if gone else []
    if idle:
        said.append(f"no sidecar takes the requests of {', '.join(idle)}: is that service running with rabbitsync?")
    return "; ".join(said)


def _complete(state: BackfillStatus) -> st.Observation:
    publishers = ", ".join(r.publisher for r in state.requests)
    return st.Observation(BACKFILL_COMPLETE, "True", "Complete", f"{state.applied} events applied, from {publishers}")


def _age(state: BackfillStatus, now: datetime) -> float:
    if state.requested_at is None:
        return 0.0
    return (now - datetime.fromisoformat(state.requested_at)).total_seconds()


def _dump(state: BackfillStatus) -> dict[str, Any]:
    # A None field stays at the top: in the status's merge patch it removes what an earlier backfill
    # left (its completedAt). The requests list is replaced whole, so its entries leave theirs out.
    found = state.model_dump(by_alias=True)
    found["requests"] = [r.model_dump(by_alias=True, exclude_none=True) for r in state.requests]
    return found
