"""A subscription's reconcile, followed by a step of its backfill when one is asked for or running.

The step shares the reconcile's status patch, object gate and retry schedule instead of running on a
timer of its own: two handlers patching one object's ``status.conditions`` (a list, replaced whole by
a merge patch) would overwrite each other's conditions. While a backfill runs, the outcome asks for a
retry (kopf's capped backoff) and the subscription is resynced every ``resync_seconds``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from rabbitsync.amqp.backfill import BackfillBroker
from rabbitsync.operator import backfill
from rabbitsync.operator import status as st
from rabbitsync.operator.kube import Cluster, KubeError
from rabbitsync.operator.outcome import ReconcileOutcome
from rabbitsync.operator.references import MissingReference, ResolvedBroker, resolve_broker
from rabbitsync.operator.settings import OperatorSettings
from rabbitsync.operator.subscription import Subscription
from rabbitsync.transport.errors import BrokerError

BackfillBrokerFactory = Callable[[ResolvedBroker], BackfillBroker]
RUNNING = "backfill running"
"""The retry reason of a reconcile whose subscription has a backfill in progress."""


def due(status: Mapping[str, Any], annotations: Mapping[str, str]) -> bool:
    """A backfill runs, or is asked for by a value of the annotation not acted on yet: the subscription
    is resynced every resync interval, not only every refresh.

    The annotation needs this: no change handler can react to it, since kopf leaves the annotations
    under its own storage prefix (``rabbitsync.io/``) out of the changes it reacts to, so a
    ``kubectl annotate`` on a Ready subscription would wait for its next refresh (minutes).
    """
    previous = status.get("backfill")
    return backfill.running(previous) or backfill.annotated(previous, annotations) is not None


def follow(
    outcome: ReconcileOutcome,
    sub: Subscription,
    annotations: Mapping[str, str],
    cluster: Cluster,
    brokers: BackfillBrokerFactory,
    settings: OperatorSettings,
    now: datetime | None = None,
) -> ReconcileOutcome:
    """``outcome`` with the backfill's status, condition and Events added, if there is a backfill."""
    queue = outcome.status.get("queue")
    previous: Mapping[str, Any] | None = sub.status.get("backfill")
    if not isinstance(queue, str):
        return outcome  # not set up on the broker (yet): nothing can be asked for
    try:
        spec = sub.spec()
        trigger = backfill.asked(previous, annotations, spec.backfill, first_setup=not sub.status.get("queue"))
        if trigger is None and not backfill.running(previous):
            return outcome
        broker = resolve_broker(cluster, sub.namespace, spec.broker, settings.operator_namespace)
    except (MissingReference, KubeError, BrokerError):
        return outcome  # the reconcile itself reported it
    now = now or datetime.now(UTC)
    subscriber = backfill.Subscriber(
        cluster=settings.cluster,
        namespace=sub.namespace,
        name=sub.name,
        service=spec.service,
        queue=queue,
        events=tuple(spec.events),
    )
    result = backfill.step(
        subscriber,
        previous,
        trigger,
        brokers(broker),
        exchange=broker.exchange,
        now=now,
        response_seconds=settings.backfill_response_seconds,
    )
    if result is None:
        return outcome
    conditions, notes = st.apply(
        st.conditions_of(outcome.status), [result.observation], generation=sub.generation, now=now
    )
    status = {**outcome.status, "conditions": st.dump(conditions), "backfill": result.status}
    retry = outcome.temporary_failure or (RUNNING if result.running else None)
    return ReconcileOutcome(status=status, notes=[*outcome.notes, *notes], temporary_failure=retry)
