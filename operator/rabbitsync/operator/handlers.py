"""The kopf handlers, registered explicitly on a registry (no import-time side effects).

Each handler is a translation: kopf's kwargs in (the object, the indexes the port reads), a plain
reconcile or cleanup function called with the port, the result written to ``patch.status`` and
Events, and the retry decision handed back to kopf.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import kopf

from rabbitsync.amqp.rabbit import RabbitBroker
from rabbitsync.api.clustersyncbroker import RESOURCE as CLUSTER_BROKER
from rabbitsync.api.meta import GROUP, VERSION
from rabbitsync.api.syncbroker import RESOURCE as BROKER
from rabbitsync.api.syncpublication import RESOURCE as PUBLICATION
from rabbitsync.api.syncsubscription import RESOURCE as SUBSCRIPTION
from rabbitsync.operator import reconcile as rc
from rabbitsync.operator.brokers import reconcile_broker
from rabbitsync.operator.cleanup import attempt_failed, cleanup
from rabbitsync.operator.gate import ObjectGate
from rabbitsync.operator.kube import ObjectRef, indexes
from rabbitsync.operator.kube.api import ApiCluster
from rabbitsync.operator.orphans import OrphanCollector
from rabbitsync.operator.outcome import CleanupOutcome, ObjectView, ReconcileOutcome
from rabbitsync.operator.publication import Publication, cleanup_publication, reconcile_publication
from rabbitsync.operator.references import ResolvedBroker
from rabbitsync.operator.settings import OperatorSettings
from rabbitsync.operator.subscription import Subscription

log = logging.getLogger(__name__)


def _broker_factory(resolved: ResolvedBroker) -> RabbitBroker:
    return RabbitBroker(resolved.endpoint)


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


def _publication(kwargs: dict[str, Any]) -> Publication:
    return Publication.from_body(kwargs["namespace"], kwargs["name"], kwargs["meta"], kwargs["spec"], kwargs["status"])


def _view(kwargs: dict[str, Any]) -> ObjectView:
    # A cluster-scoped object's namespace is None.
    return ObjectView(kwargs["namespace"] or "", kwargs["name"], kwargs["meta"].get("generation"), kwargs["status"])


Reconcile = Callable[[ApiCluster, dict[str, Any]], ReconcileOutcome]


def _register_reconciler(
    registry: kopf.OperatorRegistry, settings: OperatorSettings, plural: str, reconcile: Reconcile
) -> None:
    """``reconcile`` on create/update/resume (temporary failures retried with capped backoff) and on a
    resync timer (drift repair, fresh counts), always writing the outcome to the status and Events.
    The two never run at once on one object, nor the timer on a spec older than the last change's."""
    resource = (GROUP, VERSION, plural)
    gate = ObjectGate()

    def run(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, kwargs: dict[str, Any]) -> ReconcileOutcome:
        cluster = _cluster(memo, kwargs)
        outcome = reconcile(cluster, kwargs)
        patch.status.update(outcome.status)
        cluster.post_events(ObjectRef.from_body(body), outcome.notes)
        return outcome

    def on_change(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int, **kwargs: Any) -> None:
        with gate.change(kwargs["uid"], kwargs["meta"].get("generation")):
            outcome = run(body, patch, memo, kwargs)
        if outcome.temporary_failure is not None:
            raise kopf.TemporaryError(outcome.temporary_failure, delay=rc.backoff_seconds(retry, settings))

    def on_timer(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any) -> None:
        # Failures are already in the status, and the interval itself is the retry schedule: no raise.
        with gate.resync(kwargs["uid"], kwargs["meta"].get("generation")) as due:
            if due:
                run(body, patch, memo, kwargs)

    for decorator in (
        kopf.on.create(*resource, registry=registry, id="reconcile"),
        kopf.on.update(*resource, field="spec", registry=registry, id="reconcile"),
        kopf.on.resume(*resource, registry=registry, id="reconcile"),
    ):
        decorator(on_change)
    kopf.timer(
        *resource,
        interval=settings.resync_seconds,
        initial_delay=settings.resync_seconds,
        registry=registry,
        id="resync",
    )(on_timer)


Cleanup = Callable[[ApiCluster, dict[str, Any], int], CleanupOutcome]


def _register_cleanup(registry: kopf.OperatorRegistry, settings: OperatorSettings, plural: str, clean: Cleanup) -> None:
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
            raise kopf.TemporaryError("cleanup failed", delay=rc.backoff_seconds(retry, settings))

    kopf.on.delete(GROUP, VERSION, plural, registry=registry, id="cleanup")(on_delete)


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
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
    _register_reconciler(
        registry,
        settings,
        SUBSCRIPTION.plural,
        lambda cluster, kw: rc.reconcile(_subscription(kw), cluster, _broker_factory, settings),
    )
    # One collector for every broker object: it remembers since when each orphan has been seen.
    orphans = OrphanCollector(settings.cluster, settings.namespaces, settings.orphan_grace_seconds)
    _register_reconciler(
        registry,
        settings,
        BROKER.plural,
        lambda cluster, kw: reconcile_broker(_view(kw), cluster, _broker_factory, orphans=orphans),
    )
    _register_reconciler(
        registry,
        settings,
        CLUSTER_BROKER.plural,
        lambda cluster, kw: reconcile_broker(
            _view(kw), cluster, _broker_factory, operator_namespace=settings.operator_namespace, orphans=orphans
        ),
    )
    _register_reconciler(
        registry,
        settings,
        PUBLICATION.plural,
        lambda cluster, kw: reconcile_publication(_publication(kw), cluster, _broker_factory, settings),
    )

    _register_cleanup(
        registry,
        settings,
        SUBSCRIPTION.plural,
        lambda cluster, kw, retry: cleanup(_subscription(kw), cluster, _broker_factory, settings, attempt=retry),
    )
    _register_cleanup(
        registry,
        settings,
        PUBLICATION.plural,
        lambda cluster, kw, retry: cleanup_publication(
            _publication(kw), cluster, _broker_factory, settings, attempt=retry
        ),
    )
    # An explicit registry gets none of kopf's default login handlers: the same KUBECONFIG/in-cluster
    # credentials as the kubernetes client.
    kopf.on.login(registry=registry, id="login")(kopf.login_via_client)


def configure(kopf_settings: kopf.OperatorSettings) -> None:
    """kopf settings: our own annotations for its bookkeeping, and no chatter in Events."""
    # The CRD schema has no status.kopf field: keep kopf's progress and diff-base in annotations.
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    kopf_settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    kopf_settings.persistence.finalizer = f"{GROUP}/finalizer"
    # Our Events say what changed on the broker; kopf's per-handler "succeeded" Events would drown them.
    kopf_settings.posting.level = logging.WARNING
    kopf_settings.peering.standalone = True
