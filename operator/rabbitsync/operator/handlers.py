"""The kopf handlers, registered explicitly on a registry (no import-time side effects).

Each handler is a translation: kopf's kwargs in (the object, the indexes the port reads), a plain
reconcile or cleanup function called with the port, the result written to ``patch.status`` and
Events, and the retry decision handed back to kopf.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from rabbitsync.amqp.backfill import RabbitBackfill
from rabbitsync.amqp.connections import ConnectionPool
from rabbitsync.amqp.rabbit import RabbitBroker
from rabbitsync.amqp.shared import RecentShared
from rabbitsync.amqp.users import RecentUsers
from rabbitsync.api.clustersyncbroker import RESOURCE as CLUSTER_BROKER
from rabbitsync.api.meta import GROUP, VERSION
from rabbitsync.api.syncbroker import RESOURCE as BROKER
from rabbitsync.api.syncpublication import RESOURCE as PUBLICATION
from rabbitsync.api.syncsubscription import RESOURCE as SUBSCRIPTION
from rabbitsync.backoff import retry_delay
from rabbitsync.operator import backfill_reconcile, drift
from rabbitsync.operator import reconcile as rc
from rabbitsync.operator.brokers import reconcile_broker
from rabbitsync.operator.cleanup import attempt_failed, cleanup
from rabbitsync.operator.gate import ObjectGate
from rabbitsync.operator.kube import KubeError, ObjectRef, indexes
from rabbitsync.operator.kube.api import ApiCluster, annotate_subscription
from rabbitsync.operator.metrics import ObjectKey, OperatorMetrics
from rabbitsync.operator.orphans import OrphanCollector
from rabbitsync.operator.outcome import CleanupOutcome, ObjectView, ReconcileOutcome
from rabbitsync.operator.publication import Publication, cleanup_publication, reconcile_publication
from rabbitsync.operator.references import BrokerFactory, ResolvedBroker
from rabbitsync.operator.refresh import RefreshSchedule
from rabbitsync.operator.settings import OperatorSettings
from rabbitsync.operator.statuses import StatusMemory
from rabbitsync.operator.subscription import Subscription

log = logging.getLogger(__name__)


RESYNC = "resync"
"""The resync timer's handler id."""

RETRY = "retry"
"""The reconcile metrics' trigger for a change handler's retry that runs ``on_retry``."""


class QuietResync(logging.Filter):
    """Drops kopf's "Timer 'resync' succeeded." (a filter for the ``kopf.objects`` logger).

    kopf logs it at INFO for every tick of every object's timer, Ready or skipped alike: about 33 lines
    a second at 1,000 subscriptions, none naming its object in the default format. What a resync
    finds or repairs is in the object's status, Events and the reconcile metrics; its failures still log.
    """

    _LINE = f"Timer {RESYNC!r} succeeded."

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self._LINE


def _broker_factory(pool: ConnectionPool, users: RecentUsers, shared: RecentShared) -> BrokerFactory:
    """Brokers whose AMQP connections come from ``pool`` (one kept connection per broker), which put
    a service's user only when it changed or ``users`` has not put it lately, and which take the
    cluster's shared objects from ``shared`` while fresh."""

    def broker(resolved: ResolvedBroker) -> RabbitBroker:
        return RabbitBroker(resolved.endpoint, connections=pool, users=users, shared=shared)

    return broker


def _cluster(memo: kopf.Memo, kwargs: dict[str, Any]) -> ApiCluster:
    """The port for one handler call: kopf hands every handler the indexes as kwargs named by their ids."""
    return ApiCluster(
        memo.api,
        sync_brokers=kwargs[indexes.SYNC_BROKERS],
        subscriptions=kwargs[indexes.SUBSCRIPTIONS_BY_SERVICE],
        publications=kwargs[indexes.PUBLICATIONS_BY_SERVICE],
        cluster_brokers=kwargs[indexes.CLUSTER_SYNC_BROKERS],
    )


def _subscription(kwargs: dict[str, Any]) -> Subscription:
    return Subscription.from_body(kwargs["namespace"], kwargs["name"], kwargs["meta"], kwargs["spec"], kwargs["status"])


def _backfill_due(kwargs: dict[str, Any]) -> bool:
    """A backfill of this subscription runs or is asked for (``backfill_reconcile.due``)."""
    return backfill_reconcile.due(kwargs["status"], kwargs["meta"].get("annotations") or {})


def _publication(kwargs: dict[str, Any]) -> Publication:
    return Publication.from_body(kwargs["namespace"], kwargs["name"], kwargs["meta"], kwargs["spec"], kwargs["status"])


def _view(kwargs: dict[str, Any]) -> ObjectView:
    # A cluster-scoped object's namespace is None.
    return ObjectView(kwargs["namespace"] or "", kwargs["name"], kwargs["meta"].get("generation"), kwargs["status"])


def _key(plural: str, kwargs: dict[str, Any]) -> ObjectKey:
    return plural, kwargs["namespace"] or "", kwargs["name"]


Reconcile = Callable[[ApiCluster, kopf.Memo, dict[str, Any]], ReconcileOutcome]


def _register_reconciler(
    registry: kopf.OperatorRegistry,
    settings: OperatorSettings,
    metrics: OperatorMetrics,
    plural: str,
    reconcile: Reconcile,
    *,
    resync_seconds: float,
    annotations: Mapping[str, str] | None = None,
    watched: Callable[[dict[str, Any]], bool] | None = None,
    statuses: StatusMemory,
    on_retry: Reconcile | None = None,
) -> None:
    """``reconcile`` on create/update/resume (temporary failures retried with capped, jittered backoff),
    on a change of one of ``annotations`` (handler id -> annotation, outside kopf's storage prefix:
    the drift sweep's request) and on a resync timer (fresh counts), always writing the outcome to the status
    and Events. A change and the timer never run at once on one object, nor the timer on a spec older
    than the last change's. An object ``watched`` (Ready; the drift sweep compares it) is resynced only
    every ``refresh_seconds`` on average (``refresh``: spread, so objects created together are not
    refreshed together); any other (waiting
    for something outside it: a consumer, a broker that does not allow its namespace yet) every
    ``resync_seconds``. Each reconcile starts from the status this process last wrote (``statuses``,
    shared with whoever else reads them), not the body's. A retry of a change runs ``on_retry``, if
    given, instead of ``reconcile``. What is kept per object is forgotten once the object is deleted."""
    resource = (GROUP, VERSION, plural)
    gate = ObjectGate()
    refreshed = RefreshSchedule(settings.refresh_seconds)

    def newest(kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` with the status this process last wrote instead of the body's, which may lag."""
        return {**kwargs, "status": statuses.newest(kwargs["uid"], kwargs["status"])}

    def run(
        body: kopf.Body,
        patch: kopf.Patch,
        memo: kopf.Memo,
        kwargs: dict[str, Any],
        trigger: str,
        how: Reconcile = reconcile,
    ) -> ReconcileOutcome:
        cluster = _cluster(memo, kwargs)
        outcome = metrics.observe(_key(plural, kwargs), trigger, lambda: how(cluster, memo, kwargs))
        patch.status.update(outcome.status)
        statuses.wrote(kwargs["uid"], kwargs["status"], outcome.status)
        cluster.post_events(ObjectRef.from_body(body), outcome.notes)
        return outcome

    def on_change(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int, **kwargs: Any) -> None:
        with gate.change(kwargs["uid"], kwargs["meta"].get("generation")):
            kwargs = newest(kwargs)
            # A retry (after "waiting for a consumer", say) whose object a resync has made Ready since.
            if retry and _settled(watched, refreshed, kwargs, time.monotonic()):
                return
            if retry and on_retry is not None:
                outcome = run(body, patch, memo, kwargs, RETRY, on_retry)
            else:
                outcome = run(body, patch, memo, kwargs, "change")
        refreshed.done(kwargs["uid"], time.monotonic())
        if outcome.temporary_failure is not None:
            # Jittered: a broker outage fails every subscription at once, and they must not retry in lockstep.
            raise kopf.TemporaryError(outcome.temporary_failure, delay=retry_delay(retry, settings.max_backoff_seconds))

    def on_timer(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any) -> None:
        uid, now, kwargs = kwargs["uid"], time.monotonic(), newest(kwargs)
        if _settled(watched, refreshed, kwargs, now):
            return
        # Failures are already in the status, and the interval itself is the retry schedule: no raise.
        with gate.resync(uid, kwargs["meta"].get("generation")) as due:
            if due:
                run(body, patch, memo, kwargs, "resync")
                refreshed.done(uid, now)

    _on_changes(registry, resource, annotations or {}, on_change)
    kopf.timer(*resource, interval=resync_seconds, initial_delay=resync_seconds, registry=registry, id=RESYNC)(on_timer)
    forget_on_deletion(registry, plural, gate.forget, refreshed.forget, statuses.forget)


def _on_changes(
    registry: kopf.OperatorRegistry,
    resource: tuple[str, str, str],
    annotations: Mapping[str, str],
    handler: Callable[..., None],
) -> None:
    """``handler`` on create, spec update and resume, and on a change of each of ``annotations``."""
    for decorator in (
        kopf.on.create(*resource, registry=registry, id="reconcile"),
        kopf.on.update(*resource, field="spec", registry=registry, id="reconcile"),
        kopf.on.resume(*resource, registry=registry, id="reconcile"),
    ):
        decorator(handler)
    for handler_id, annotation in annotations.items():
        field = ("metadata", "annotations", annotation)
        kopf.on.update(*resource, field=field, registry=registry, id=handler_id)(handler)


def _settled(
    watched: Callable[[dict[str, Any]], bool] | None, refreshed: RefreshSchedule, kwargs: dict[str, Any], now: float
) -> bool:
    """Watched (Ready) and not due a refresh: nothing for a reconcile to do now."""
    return watched is not None and watched(kwargs) and not refreshed.due(kwargs["uid"], now)


def forget_on_deletion(registry: kopf.OperatorRegistry, plural: str, *forget: Callable[[str], None]) -> None:
    """Call each of ``forget`` with the uid of every object of ``plural`` once it is gone from the API server."""

    def on_deleted(**kwargs: Any) -> None:
        for drop in forget:
            drop(kwargs["uid"])

    # Filtered, not returning early: kopf logs "Handler 'forget' succeeded" for every call, i.e. for
    # every status patch of every object (hundreds a minute with a few hundred subscriptions).
    kopf.on.event(GROUP, VERSION, plural, registry=registry, id="forget", when=_deleted)(on_deleted)


def _deleted(event: kopf.RawEvent, **_: Any) -> bool:
    return event.get("type") == "DELETED"


def _sweep(
    memo: kopf.Memo, settings: OperatorSettings, kwargs: dict[str, Any], statuses: StatusMemory
) -> drift.Candidates:
    """What the drift sweep of the broker object in ``kwargs`` compares: its verified subscriptions, with
    the statuses this process last wrote for them (``statuses``)."""
    found = drift.candidates(kwargs[drift.SYNCED_BY_BROKER], kwargs[indexes.SYNC_BROKERS], _view(kwargs))
    subscriptions = drift.as_last_written(found, statuses.written)
    return drift.Candidates(tuple(subscriptions), settings, _repair_requester(memo))


def _repair_requester(memo: kopf.Memo) -> drift.RequestRepair:
    def request(namespace: str, name: str) -> None:
        try:
            annotate_subscription(memo.api, namespace, name, {drift.DRIFT_ANNOTATION: datetime.now(UTC).isoformat()})
        except KubeError as e:  # the next sweep asks again
            log.warning("could not ask for a reconcile of %s/%s: %s", namespace, name, e)

    return request


Cleanup = Callable[[ApiCluster, dict[str, Any], int], CleanupOutcome]


def _register_cleanup(
    registry: kopf.OperatorRegistry, settings: OperatorSettings, metrics: OperatorMetrics, plural: str, clean: Cleanup
) -> None:
    """``clean`` on deletion (kopf's finalizer), its Events posted, retried with capped backoff until done."""

    def on_delete(body: kopf.Body, memo: kopf.Memo, retry: int, **kwargs: Any) -> None:
        cluster = _cluster(memo, kwargs)
        try:
            result = clean(cluster, kwargs, retry)
        except Exception as e:
            # kopf would retry an escaped exception forever: the finalizer would stick.
            log.exception("cleanup of %s/%s raised", kwargs.get("namespace"), kwargs.get("name"))
            result = attempt_failed(
                settings,
                retry,
                "CleanupFailed",
                f"unexpected {type(e).__name__}: {e}",
                gave_up="CleanupAbandoned",
                left="whatever the earlier Events of this object name",
            )
        cluster.post_events(ObjectRef.from_body(body), result.notes)
        if not result.done:
            raise kopf.TemporaryError("cleanup failed", delay=retry_delay(retry, settings.max_backoff_seconds))
        metrics.forget(_key(plural, kwargs))

    kopf.on.delete(GROUP, VERSION, plural, registry=registry, id="cleanup")(on_delete)


def register(
    registry: kopf.OperatorRegistry, settings: OperatorSettings, metrics: OperatorMetrics | None = None
) -> None:
    metrics = metrics or OperatorMetrics()
    # The indexes every handler's port reads instead of listing: kopf fills them before any handler runs.
    kopf.index(GROUP, VERSION, BROKER.plural, registry=registry, id=indexes.SYNC_BROKERS)(indexes.sync_brokers)
    kopf.index(GROUP, VERSION, SUBSCRIPTION.plural, registry=registry, id=indexes.SUBSCRIPTIONS_BY_SERVICE)(
        indexes.subscriptions_by_service
    )
    kopf.index(GROUP, VERSION, PUBLICATION.plural, registry=registry, id=indexes.PUBLICATIONS_BY_SERVICE)(
        indexes.subscriptions_by_service
    )
    kopf.index(GROUP, VERSION, CLUSTER_BROKER.plural, registry=registry, id=indexes.CLUSTER_SYNC_BROKERS)(
        indexes.sync_brokers
    )
    kopf.index(GROUP, VERSION, SUBSCRIPTION.plural, registry=registry, id=drift.SYNCED_BY_BROKER)(
        drift.synced_by_broker
    )
    # The subscriptions' last written statuses: their reconciles start from them, the drift sweeps compare them.
    subscription_statuses = StatusMemory()
    pool = ConnectionPool(per_broker=settings.broker_connections)
    brokers = _broker_factory(
        pool,
        RecentUsers(fresh_seconds=settings.resync_seconds),
        RecentShared(fresh_seconds=settings.resync_seconds),
    )

    def reconcile_subscription(cluster: ApiCluster, _: kopf.Memo, kw: dict[str, Any]) -> ReconcileOutcome:
        sub = _subscription(kw)
        return backfill_reconcile.follow(
            rc.reconcile(sub, cluster, brokers, settings),
            sub,
            kw["meta"].get("annotations") or {},
            cluster,
            lambda resolved: RabbitBackfill(resolved.endpoint),
            settings,
        )

    def retry_subscription(cluster: ApiCluster, memo: kopf.Memo, kw: dict[str, Any]) -> ReconcileOutcome:
        """One look at the queue of a subscription waiting only for a consumer, if that settles it."""
        sub = _subscription(kw)
        if sub.waiting_only_for_consumer() and not _backfill_due(kw):
            looked = rc.recheck_consumer(sub, cluster, brokers, settings)
            if looked is not None:
                return looked
        return reconcile_subscription(cluster, memo, kw)

    # Closed when the operator stops: the broker sees the connections end instead of timing them out.
    kopf.on.cleanup(registry=registry, id="close-connections")(lambda **_: pool.close())
    _register_reconciler(
        registry,
        settings,
        metrics,
        SUBSCRIPTION.plural,
        reconcile_subscription,
        resync_seconds=settings.resync_seconds,
        annotations={"repair": drift.DRIFT_ANNOTATION},
        statuses=subscription_statuses,
        on_retry=retry_subscription,
        # A backfill running or asked for is looked at every resync interval, not every refresh.
        watched=lambda kw: _subscription(kw).healthy() and not _backfill_due(kw),
    )
    # One collector for every broker object: it remembers since when each orphan has been seen.
    orphans = OrphanCollector(settings.cluster, settings.namespaces, settings.orphan_grace_seconds)
    _register_reconciler(
        registry,
        settings,
        metrics,
        BROKER.plural,
        lambda cluster, memo, kw: reconcile_broker(
            _view(kw),
            cluster,
            brokers,
            settings=settings,
            orphans=orphans,
            sweep=_sweep(memo, settings, kw, subscription_statuses),
        ),
        resync_seconds=settings.resync_seconds,
        statuses=StatusMemory(),
    )
    _register_reconciler(
        registry,
        settings,
        metrics,
        CLUSTER_BROKER.plural,
        lambda cluster, memo, kw: reconcile_broker(
            _view(kw),
            cluster,
            brokers,
            operator_namespace=settings.operator_namespace,
            settings=settings,
            orphans=orphans,
            sweep=_sweep(memo, settings, kw, subscription_statuses),
        ),
        resync_seconds=settings.resync_seconds,
        statuses=StatusMemory(),
    )
    _register_reconciler(
        registry,
        settings,
        metrics,
        PUBLICATION.plural,
        lambda cluster, _, kw: reconcile_publication(_publication(kw), cluster, brokers, settings),
        resync_seconds=settings.resync_seconds,
        statuses=StatusMemory(),
    )

    _register_cleanup(
        registry,
        settings,
        metrics,
        SUBSCRIPTION.plural,
        lambda cluster, kw, retry: cleanup(_subscription(kw), cluster, brokers, settings, attempt=retry),
    )
    _register_cleanup(
        registry,
        settings,
        metrics,
        PUBLICATION.plural,
        lambda cluster, kw, retry: cleanup_publication(_publication(kw), cluster, brokers, settings, attempt=retry),
    )
    # An explicit registry gets none of kopf's default login handlers: the same KUBECONFIG/in-cluster
    # credentials as the kubernetes client.
    kopf.on.login(registry=registry, id="login")(kopf.login_via_client)


CONSISTENCY_TIMEOUT_SECONDS = 60.0
"""How long kopf waits for its own patch to come back in the watch stream (``configure``)."""

WORKERS_BESIDES_BROKER = 16
"""kopf worker threads at least (handlers are synchronous); twice the broker connections if more."""


def workers(settings: OperatorSettings) -> int:
    """kopf's worker threads, which run our synchronous handlers."""
    # Each holds its thread (kopf's default is cores + 4, 6 on 2 cores) while it waits, also for one of
    # the broker's kept connections. With as many workers as connections, a burst of new subscriptions
    # would leave no worker for the timers and the reconciles that need only the API server.
    return max(WORKERS_BESIDES_BROKER, 2 * settings.broker_connections)


def configure(kopf_settings: kopf.OperatorSettings, settings: OperatorSettings | None = None) -> None:
    """kopf settings: our own annotations for its bookkeeping, no chatter in Events, and enough workers."""
    if settings is not None:
        kopf_settings.execution.max_workers = workers(settings)
    # The CRD schema has no status.kopf field: keep kopf's progress and diff-base in annotations.
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    kopf_settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    kopf_settings.persistence.finalizer = f"{GROUP}/finalizer"
    # Our Events say what changed on the broker; kopf's per-handler "succeeded" Events would drown them.
    kopf_settings.posting.level = logging.WARNING
    kopf_settings.peering.standalone = True
    # After patching an object, kopf waits this long for the patched version to come back in the watch
    # stream before it runs change handlers on the body it has. At 1,000 subscriptions the stream lagged
    # more than kopf's 5 s: handlers ran again on bodies without kopf's own record of the last handled
    # spec, i.e. as creations (1,980 creations processed for 1,000 objects), and each such run patched
    # again, which made the stream lag further. Waiting longer costs nothing when the stream keeps up,
    # with one exception: a patch that changes nothing (a resume that found everything as it was) has
    # no version to wait for, so a spec change within the next 60 s is handled at their end.
    kopf_settings.persistence.consistency_timeout = CONSISTENCY_TIMEOUT_SECONDS
