"""The kopf handlers, registered explicitly on a registry (no import-time side effects).

Each handler is a translation: kopf's kwargs in, ``reconcile``'s plain functions called, the result
written to ``patch.status`` and Events, and the retry decision handed back to kopf.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import kopf

from rabbitsync.amqp.rabbit import RabbitBroker
from rabbitsync.api.meta import GROUP, VERSION
from rabbitsync.api.syncbroker import RESOURCE as BROKER
from rabbitsync.api.syncsubscription import RESOURCE as SUBSCRIPTION
from rabbitsync.operator import reconcile as rc
from rabbitsync.operator.brokers import reconcile_broker
from rabbitsync.operator.settings import OperatorSettings
from rabbitsync.operator.status import Note

log = logging.getLogger(__name__)


def _broker_factory(resolved: rc.ResolvedBroker) -> RabbitBroker:
    return RabbitBroker(resolved.endpoint)


def _emit(body: kopf.Body, notes: list[Note]) -> None:
    for note in notes:
        kopf.event(body, type=note.type, reason=note.reason, message=note.message[:1024])


def _subscription(kwargs: dict[str, Any]) -> rc.Subscription:
    return rc.Subscription.from_body(
        kwargs["namespace"], kwargs["name"], kwargs["meta"], kwargs["spec"], kwargs["status"]
    )


Reconcile = Callable[[kopf.Memo, dict[str, Any]], rc.Outcome]


def _register_reconciler(
    registry: kopf.OperatorRegistry, settings: OperatorSettings, plural: str, reconcile: Reconcile
) -> None:
    """``reconcile`` on create/update/resume (temporary failures retried with capped backoff) and on a
    resync timer (drift repair, fresh counts), always writing the outcome to the status and Events."""
    resource = (GROUP, VERSION, plural)

    def write(body: kopf.Body, patch: kopf.Patch, outcome: rc.Outcome) -> None:
        patch.status.update(outcome.status)
        _emit(body, outcome.notes)

    def on_change(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int, **kwargs: Any) -> None:
        outcome = reconcile(memo, kwargs)
        write(body, patch, outcome)
        if outcome.temporary_failure is not None:
            raise kopf.TemporaryError(outcome.temporary_failure, delay=rc.backoff_seconds(retry, settings))

    def on_timer(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any) -> None:
        # Failures are already in the status, and the interval itself is the retry schedule: no raise.
        write(body, patch, reconcile(memo, kwargs))

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


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    _register_reconciler(
        registry,
        settings,
        SUBSCRIPTION.plural,
        lambda memo, kw: rc.reconcile(memo.api, settings, _subscription(kw), _broker_factory),
    )
    _register_reconciler(
        registry,
        settings,
        BROKER.plural,
        lambda memo, kw: reconcile_broker(
            memo.api, kw["namespace"], kw["name"], kw["meta"], kw["status"], _broker_factory
        ),
    )

    def delete_subscription(body: kopf.Body, memo: kopf.Memo, retry: int, **kwargs: Any) -> None:
        result = rc.cleanup(memo.api, settings, _subscription(kwargs), _broker_factory, attempt=retry)
        _emit(body, result.notes)
        if not result.done:
            raise kopf.TemporaryError("broker cleanup failed", delay=rc.backoff_seconds(retry, settings))

    kopf.on.delete(GROUP, VERSION, SUBSCRIPTION.plural, registry=registry, id="cleanup")(delete_subscription)
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
