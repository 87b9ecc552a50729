"""The one table from a failure's class to what it says about the conditions, for both Kinds.

A SyncSubscription reports BrokerReachable, TopologySynced and Ready; a SyncBroker BrokerReachable
and Ready. Which statuses a failure implies depends only on its class (a refused precondition proves
the broker answered; a missing Secret proves nothing about the broker), and whether retrying soon can
help is each class's ``permanent``. Reasons come from the errors themselves, never compared as strings.
"""

from __future__ import annotations

from dataclasses import dataclass

from rabbitsync.api.conditions import BROKER_REACHABLE, READY, TOPOLOGY_SYNCED, ConditionStatus
from rabbitsync.operator.kube import KubeError
from rabbitsync.operator.references import MissingReference
from rabbitsync.operator.status import Observation
from rabbitsync.transport.errors import BrokerError, PreconditionFailed

Failure = MissingReference | KubeError | BrokerError
"""Everything a reconcile turns into conditions; anything else is a bug and propagates."""

CONNECTED = "Connected"


@dataclass(frozen=True)
class Reading:
    reachable: ConditionStatus
    """BrokerReachable."""
    synced: ConditionStatus
    """TopologySynced (SyncSubscriptions only)."""


# First match wins: subclasses before their bases.
_TABLE: tuple[tuple[type[Exception], Reading], ...] = (
    # The SyncBroker, a Secret or a key is missing: nothing was asked of the broker.
    (MissingReference, Reading(reachable="Unknown", synced="Unknown")),
    # The API server refused or failed a read (invalid data, unavailable): nothing known of the broker.
    (KubeError, Reading(reachable="Unknown", synced="Unknown")),
    # The broker answered and refused a declaration (e.g. another queue type): reachable, not in sync.
    (PreconditionFailed, Reading(reachable="True", synced="False")),
    # Down, access refused, unusable URI or CA: no working connection, so the topology is unknown.
    (BrokerError, Reading(reachable="False", synced="Unknown")),
)


def reading(error: Failure) -> Reading:
    return next(r for cls, r in _TABLE if isinstance(error, cls))


def retry_soon(error: Failure) -> bool:
    """Whether a capped-backoff retry may help, rather than waiting for the resync or a spec change."""
    return not error.permanent


def reachable(host: str) -> Observation:
    return Observation(BROKER_REACHABLE, "True", CONNECTED, f"broker {host}")


@dataclass(frozen=True)
class Diagnosis:
    observations: list[Observation]
    temporary_failure: str | None
    """``message`` when a retry soon may help."""


def for_subscription(error: Failure, message: str) -> Diagnosis:
    r = reading(error)
    return _diagnosis(
        error, message, _reachable(error, r, message), Observation(TOPOLOGY_SYNCED, r.synced, error.reason, message)
    )


def for_broker(error: Failure, message: str) -> Diagnosis:
    return _diagnosis(error, message, _reachable(error, reading(error), message))


def _diagnosis(error: Failure, message: str, *observations: Observation) -> Diagnosis:
    ready = Observation(READY, "False", error.reason, message)
    return Diagnosis([*observations, ready], message if retry_soon(error) else None)


def _reachable(error: Failure, r: Reading, message: str) -> Observation:
    return Observation(BROKER_REACHABLE, r.reachable, CONNECTED if r.reachable == "True" else error.reason, message)
