"""Reconciling one SyncPublication: the service's broker user may publish the declared types; its sidecar sends.

A publication owns nothing on the broker but rights: its reconcile resolves the broker, brings the
service's identity (user, permissions, Secret) in line with all its declarations, and makes sure the
service has a sidecar to send its outbox. Its deletion does the same without it, removing user and
Secret with the service's last declaration, and the service's backfill request queue (which a
backfill declared when it first asked the service) with its last publication: nobody asks a service
that publishes nothing. Failures become conditions through the one table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from rabbitsync.api.conditions import READY
from rabbitsync.api.syncpublication import SyncPublicationSpec
from rabbitsync.conventions import broker_username, service_secret_name
from rabbitsync.operator import cleanup, credentials, failures, injection
from rabbitsync.operator import status as st
from rabbitsync.operator.cleanup import credential_notes
from rabbitsync.operator.kube import Cluster, KubeError, decode
from rabbitsync.operator.outcome import CleanupOutcome, ReconcileOutcome, SpecView, conclude
from rabbitsync.operator.references import BrokerFactory, MissingReference, ResolvedBroker, resolve_broker
from rabbitsync.operator.resolution import spec_and_broker
from rabbitsync.operator.settings import OperatorSettings
from rabbitsync.topology import naming
from rabbitsync.topology.diff import Plan, QueueDeletion
from rabbitsync.transport.errors import BrokerError

KIND = "SyncPublication"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Publication(SpecView):
    """The parts of a SyncPublication object a reconcile reads."""

    def spec(self) -> SyncPublicationSpec:
        return decode.spec(SyncPublicationSpec, KIND, self.namespace, self.name, self.raw_spec)


def reconcile_publication(
    pub: Publication,
    cluster: Cluster,
    brokers: BrokerFactory,
    settings: OperatorSettings,
    now: datetime | None = None,
) -> ReconcileOutcome:
    """Give the service its identity and rights, and its sidecar; say so in the status."""
    now = now or datetime.now(UTC)
    found = spec_and_broker(pub, pub.spec, cluster, settings.operator_namespace, failures.for_broker, now)
    if isinstance(found, ReconcileOutcome):
        return found
    spec, broker = found
    creds = credentials.sync_credentials(cluster, settings, pub.namespace, spec.service, broker, brokers)
    observations, temporary = _credentials_conditions(creds, broker)
    sidecar = injection.sync_service(cluster, settings, pub.namespace, spec.service, broker)
    if temporary is None:
        temporary = sidecar.temporary_failure
    fields = {
        "user": broker_username(settings.cluster, pub.namespace, spec.service),
        "secret": service_secret_name(spec.service),
    }
    return conclude(pub, [*observations, sidecar.observation], now=now, fields=fields, temporary_failure=temporary)


def _credentials_conditions(
    creds: credentials.CredentialsResult, broker: ResolvedBroker
) -> tuple[list[st.Observation], str | None]:
    if creds.failure is not None:
        diagnosis = failures.for_broker(creds.failure, creds.observation.message)
        return [*diagnosis.observations, creds.observation], diagnosis.temporary_failure
    ready = st.Observation(READY, "True", "CredentialsReady", creds.observation.message)
    return [failures.reachable(broker.endpoint.host), creds.observation, ready], None


def cleanup_publication(
    pub: Publication, cluster: Cluster, brokers: BrokerFactory, settings: OperatorSettings, attempt: int
) -> CleanupOutcome:
    """Shrink the service's rights (or remove its identity) and its sidecar; never blocks forever."""
    try:
        return _cleanup_publication(pub, cluster, brokers, settings, attempt)
    except Exception as e:
        log.exception("cleanup of %s/%s failed unexpectedly", pub.namespace, pub.name)
        return cleanup.attempt_failed(
            settings,
            attempt,
            "CleanupFailed",
            f"unexpected {type(e).__name__}: {e}",
            gave_up=cleanup.SIDECAR_LEFT_BEHIND,
            left=f"the broker user and sidecar of {pub.namespace}/{pub.raw_spec.get('service')} as they were",
        )


def _cleanup_publication(
    pub: Publication, cluster: Cluster, brokers: BrokerFactory, settings: OperatorSettings, attempt: int
) -> CleanupOutcome:
    try:
        spec = pub.spec()
    except KubeError as e:
        return CleanupOutcome(True, [st.Note("Warning", e.reason, str(e))])
    try:
        broker: ResolvedBroker | None = resolve_broker(cluster, pub.namespace, spec.broker, settings.operator_namespace)
    except (MissingReference, KubeError, BrokerError):
        broker = None
    creds = credentials.sync_credentials(cluster, settings, pub.namespace, spec.service, broker, brokers)
    notes = credential_notes(creds)
    retired = _retire_requests(cluster, settings, pub.namespace, spec.service, broker, brokers)
    notes += [] if retired is None else [st.Note("Warning", retired.reason, str(retired))]
    sidecar = injection.sync_service(cluster, settings, pub.namespace, spec.service, broker)
    failure = creds.failure or retired or sidecar.refused
    last = attempt + 1 >= settings.delete_give_up_attempts
    if failure is not None and failures.retry_soon(failure) and not last:
        return CleanupOutcome(False, notes)
    return CleanupOutcome(True, notes)


def _retire_requests(
    cluster: Cluster,
    settings: OperatorSettings,
    namespace: str,
    service: str,
    broker: ResolvedBroker | None,
    brokers: BrokerFactory,
) -> KubeError | BrokerError | None:
    """Delete the service's backfill request queue once it publishes nothing; the failure, if any.

    Requests still in it are dropped with it: the asking subscription sees its publisher gone
    (``PublisherNotResponding``) rather than wait for a service that will never answer.
    """
    queue = naming.backfill_request_queue(settings.cluster, namespace, service)
    try:
        if broker is None or credentials.declarations(cluster, namespace, service).published:
            return None
        brokers(broker).apply(Plan(delete_queues=(QueueDeletion(queue, if_empty=False),)))
    except (KubeError, BrokerError) as e:
        log.warning("backfill request queue %s not deleted: %s", queue, e)
        return e
    return None
