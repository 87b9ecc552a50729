"""The one table from failure classes to conditions: complete, ordered, and the same for both Kinds."""

from __future__ import annotations

from typing import TypeVar

import pytest

from rabbitsync.operator import failures
from rabbitsync.operator.kube import errors as kube_errors
from rabbitsync.operator.references import MissingReference
from rabbitsync.transport import errors as broker_errors

pytestmark = pytest.mark.unit


_E = TypeVar("_E", bound=Exception)


def _subclasses(base: type[_E]) -> list[type[_E]]:
    found: list[type[_E]] = []
    todo = [base]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


KUBE: list[kube_errors.KubeError] = [cls("Secret", "shop", "rabbitmq") for cls in _subclasses(kube_errors.KubeError)]
BROKER: list[broker_errors.BrokerError] = [cls("broker says no") for cls in _subclasses(broker_errors.BrokerError)]
MISSING: list[MissingReference] = [MissingReference(kube_errors.NotFound("SyncBroker", "shop", "default"))]
ALL: list[failures.Failure] = [*KUBE, *BROKER, *MISSING]


@pytest.mark.parametrize("error", ALL, ids=lambda e: type(e).__name__)
def test_every_error_class_has_a_reading_and_a_retry_decision(error: failures.Failure) -> None:
    reading = failures.reading(error)
    assert reading.reachable in ("True", "False", "Unknown") and reading.synced in ("True", "False", "Unknown")
    assert failures.retry_soon(error) is not error.permanent
    temporary = failures.for_subscription(error, "m").temporary_failure
    assert temporary == ("m" if failures.retry_soon(error) else None)


@pytest.mark.parametrize("error", ALL, ids=lambda e: type(e).__name__)
def test_both_kinds_read_a_failure_alike(error: failures.Failure) -> None:
    subscription = {o.type: o for o in failures.for_subscription(error, "m").observations}
    broker = {o.type: o for o in failures.for_broker(error, "m").observations}
    assert set(subscription) == {"BrokerReachable", "TopologySynced", "Ready"}
    assert set(broker) == {"BrokerReachable", "Ready"}
    for type_ in broker:
        assert broker[type_] == subscription[type_]
    assert broker["Ready"].status == "False" and broker["Ready"].reason == error.reason


def test_only_a_refused_precondition_proves_the_broker_reachable() -> None:
    reachable = {type(e).__name__ for e in ALL if failures.reading(e).reachable == "True"}
    assert reachable == {"PreconditionFailed"}
    (obs, *_) = failures.for_subscription(broker_errors.PreconditionFailed("406"), "m").observations
    assert (obs.status, obs.reason) == ("True", "Connected")


def test_kubernetes_failures_say_nothing_about_the_broker() -> None:
    kubernetes: list[failures.Failure] = [*KUBE, *MISSING]
    for error in kubernetes:
        assert failures.reading(error) == failures.Reading(reachable="Unknown", synced="Unknown")


def test_broker_failures_other_than_a_precondition_mean_no_connection() -> None:
    for error in BROKER:
        if not isinstance(error, broker_errors.PreconditionFailed):
            assert failures.reading(error) == failures.Reading(reachable="False", synced="Unknown")


def test_temporary_classes() -> None:
    temporary = {type(e).__name__ for e in ALL if failures.retry_soon(e)}
    assert temporary == {"BrokerUnreachable", "Conflict", "Unavailable", "MissingReference"}


def test_reasons_name_the_kind_and_what_happened() -> None:
    assert {e.reason for e in KUBE} == {
        "SecretError",
        "SecretNotFound",
        "SecretForbidden",
        "SecretConflict",
        "SecretInvalid",
        "SecretUnavailable",
    }
    assert MISSING[0].reason == "SyncBrokerNotFound" and str(MISSING[0]) == "SyncBroker shop/default not found"
