"""Cleaning up after a deleted SyncSubscription: its queues (or not), then its service's sidecar.

The finalizer must never stay forever: a broker that is gone or unreachable, an API server that
fails, even a bug, are retried with capped exponential backoff at most
``settings.delete_give_up_attempts`` times (minutes with the default), after which the finalizer is
released with a Warning Event naming what was left behind (:func:`attempt_failed`, which the
handlers also apply to any exception a cleanup lets escape). A reference that is missing (the
SyncBroker or its Secret deleted first, as on namespace deletion; a spec the model refuses) releases
it at once: retrying cannot bring it back. The Event then names every queue left on the broker, and
orphan collection (``orphans``) removes them later through a broker it still knows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rabbitsync.amqp.sync import delete_topology
from rabbitsync.api.syncsubscription import SyncSubscriptionSpec
from rabbitsync.operator import credentials, failures, injection
from rabbitsync.operator import status as st
from rabbitsync.operator.kube import Cluster, KubeError, NotFound
from rabbitsync.operator.orphans import RETAINED_PREFIX, retained_marker
from rabbitsync.operator.outcome import CleanupOutcome
from rabbitsync.operator.references import BrokerFactory, MissingReference, ResolvedBroker, resolve_broker
from rabbitsync.operator.settings import OperatorSettings
from rabbitsync.operator.subscription import Subscription, topology_for
from rabbitsync.topology.diff import Plan
from rabbitsync.transport.errors import BrokerError

log = logging.getLogger(__name__)

TOPOLOGY_LEFT_BEHIND = "TopologyLeftBehind"
SIDECAR_LEFT_BEHIND = "SidecarLeftBehind"


class _AttemptFailed(Exception):
    """This attempt failed in a way a later one may not: the finalizer stays, unless it was the last."""

    def __init__(self, reason: str, message: str, *, gave_up: str, left: str, notes: Sequence[st.Note] = ()) -> None:
        self.reason, self.gave_up, self.left, self.notes = reason, gave_up, left, list(notes)
        super().__init__(message)


def cleanup(
    sub: Subscription, cluster: Cluster, brokers: BrokerFactory, settings: OperatorSettings, attempt: int
) -> CleanupOutcome:
    """Delete (or retain) the subscription's queues and shrink its sidecar; ``attempt`` counts from 0."""
    try:
        return CleanupOutcome(True, _cleanup(sub, cluster, brokers, settings))
    except _AttemptFailed as e:
        failure = e
    except Exception as e:
        log.exception("cleanup of %s/%s failed unexpectedly", sub.namespace, sub.name)
        failure = _AttemptFailed(
            "CleanupFailed",
            f"unexpected {type(e).__name__}: {e}",
            gave_up=TOPOLOGY_LEFT_BEHIND,
            left=f"on the broker: queues of {sub.left_behind()}",
        )
    return attempt_failed(
        settings, attempt, failure.reason, str(failure), gave_up=failure.gave_up, left=failure.left, notes=failure.notes
    )


def attempt_failed(
    settings: OperatorSettings,
    attempt: int,
    reason: str,
    message: str,
    *,
    gave_up: str,
    left: str,
    notes: Sequence[st.Note] = (),
) -> CleanupOutcome:
    """The outcome of a failed cleanup attempt (``attempt`` from 0): retry later, or, once the budget of
    attempts is spent, release the finalizer with a Warning naming what was ``left``."""
    attempts = attempt + 1
    if attempts < settings.delete_give_up_attempts:
        note = st.Note("Warning", reason, f"cleanup attempt {attempts} failed: {message}")
    else:
        note = st.Note("Warning", gave_up, f"gave up after {attempts} attempts ({message}); left {left}")
    return CleanupOutcome(attempts >= settings.delete_give_up_attempts, [*notes, note])


def _cleanup(sub: Subscription, cluster: Cluster, brokers: BrokerFactory, settings: OperatorSettings) -> list[st.Note]:
    try:
        spec = sub.spec()
    except KubeError as e:
        return [st.Note("Warning", TOPOLOGY_LEFT_BEHIND, f"{e}; queues of {sub.left_behind()} left on the broker")]
    broker, missing = _resolve(sub, spec, cluster, settings)
    if spec.deletion_policy == "retain":
        notes = [_retain(sub, spec, broker, brokers, settings)]
    elif broker is None:
        # Every name, not just the main queue's: someone (or orphan collection) has to find them.
        names = ", ".join(q.name for q in topology_for(settings, sub, spec, "").queues)
        notes = [
            st.Note(
                "Warning",
                TOPOLOGY_LEFT_BEHIND,
                f"{missing}; left on the broker: {names} (still bound, collecting events until removed)",
            )
        ]
    else:
        notes = [_delete(sub, spec, broker, brokers, settings)]
    # This subscription no longer counts (it is being deleted): shrink the service's rights, or remove
    # its user and Secret, then shrink or remove the sidecar.
    notes += credential_notes(
        credentials.sync_credentials(cluster, settings, sub.namespace, spec.service, broker, brokers)
    )
    sidecar = injection.sync_service(cluster, settings, sub.namespace, spec.service, broker)
    refused = sidecar.refused
    if refused is not None and failures.retry_soon(refused):
        raise _AttemptFailed(
            refused.reason,
            sidecar.observation.message,
            gave_up=SIDECAR_LEFT_BEHIND,
            left=f"in Deployment {sub.namespace}/{spec.service}: its sidecar may still consume {sub.name}'s queue",
            notes=notes,
        )
    # A service without a Deployment has no sidecar to shrink: nothing worth a Warning.
    if sidecar.observation.status == "False" and not isinstance(refused, NotFound):
        notes.append(st.Note("Warning", sidecar.observation.reason, sidecar.observation.message))
    return notes


def credential_notes(result: credentials.CredentialsResult) -> list[st.Note]:
    """The Event a deletion's credentials update is worth: removed, or failed (with what is left)."""
    obs = result.observation
    if result.failure is not None:
        return [st.Note("Warning", obs.reason, f"service credentials not updated: {obs.message}")]
    if result.removed and obs.reason == credentials.USER_LEFT_BEHIND:
        return [st.Note("Warning", obs.reason, obs.message)]
    if result.removed:
        return [st.Note("Normal", "CredentialsRemoved", obs.message)]
    return []


def _resolve(
    sub: Subscription, spec: SyncSubscriptionSpec, cluster: Cluster, settings: OperatorSettings
) -> tuple[ResolvedBroker | None, failures.Failure | None]:
    """The broker, or why there is none; raises only when a later attempt may find it."""
    try:
        return resolve_broker(cluster, sub.namespace, spec.broker, settings.operator_namespace), None
    except (MissingReference, KubeError, BrokerError) as e:
        # Unlike a reconcile, a deletion does not wait for a missing SyncBroker or Secret to appear.
        if failures.retry_soon(e) and not isinstance(e, MissingReference):
            raise _AttemptFailed(
                e.reason, str(e), gave_up=TOPOLOGY_LEFT_BEHIND, left=f"on the broker: queues of {sub.left_behind()}"
            ) from e
        return None, e


def _retain(
    sub: Subscription,
    spec: SyncSubscriptionSpec,
    broker: ResolvedBroker | None,
    brokers: BrokerFactory,
    settings: OperatorSettings,
) -> st.Note:
    """Keep the queues, marked on the broker as retained on purpose, so orphan collection leaves them."""
    main = topology_for(settings, sub, spec, "").main_queue.name
    if broker is None:
        return st.Note(
            "Warning",
            "TopologyRetained",
            f"deletionPolicy=retain: queue {main} kept, but not marked (no broker): orphan collection may remove it",
        )
    try:
        brokers(broker).apply(Plan(put_policies=(retained_marker(main, spec.retry.max_attempts),)))
    except BrokerError as e:
        raise _AttemptFailed(
            e.reason, str(e), gave_up="TopologyRetained", left=f"queue {main} unmarked: orphan collection may remove it"
        ) from e
    return st.Note(
        "Normal", "TopologyRetained", f"deletionPolicy=retain: queue {main} kept (policy {RETAINED_PREFIX}{main})"
    )


def _delete(
    sub: Subscription,
    spec: SyncSubscriptionSpec,
    broker: ResolvedBroker,
    brokers: BrokerFactory,
    settings: OperatorSettings,
) -> st.Note:
    topology = topology_for(settings, sub, spec, broker.exchange)
    try:
        deleted = delete_topology(brokers(broker), topology)
    except BrokerError as e:
        # Even a permanent refusal is retried: the operator's broker user may be fixed meanwhile.
        names = ", ".join(q.name for q in topology.queues)
        raise _AttemptFailed(e.reason, str(e), gave_up=TOPOLOGY_LEFT_BEHIND, left=f"on the broker: {names}") from e
    return st.Note("Normal", "TopologyDeleted", "; ".join(deleted) or "nothing to delete")
