"""A subscription's or publication's spec and broker, or the outcome that says why they cannot be had.

Both reconciles start the same way: read the spec (the model may refuse it), resolve ``spec.broker``
(the SyncBroker, its Secret and CA may be missing), and turn a failure of either into conditions
through the one table in ``failures``. Without a resolved broker there is nothing else to do: the
sidecar cannot be configured either, so the object waits for the broker.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TypeVar

from rabbitsync.operator import failures
from rabbitsync.operator.kube import Cluster, KubeError
from rabbitsync.operator.outcome import ObjectView, ReconcileOutcome, conclude
from rabbitsync.operator.references import MissingReference, ResolvedBroker, resolve_broker
from rabbitsync.transport.errors import BrokerError


class _NamesBroker(Protocol):
    @property
    def broker(self) -> str: ...


Spec = TypeVar("Spec", bound=_NamesBroker)
Diagnose = Callable[[failures.Failure, str], failures.Diagnosis]


def spec_and_broker(
    obj: ObjectView,
    read_spec: Callable[[], Spec],
    cluster: Cluster,
    operator_namespace: str,
    diagnose: Diagnose,
    now: datetime,
) -> tuple[Spec, ResolvedBroker] | ReconcileOutcome:
    """``obj``'s spec and resolved broker; or, if either fails, the outcome ``diagnose`` makes of it."""
    try:
        spec = read_spec()
        return spec, resolve_broker(cluster, obj.namespace, spec.broker, operator_namespace)
    except (MissingReference, KubeError, BrokerError) as e:
        diagnosis = diagnose(e, str(e))
        return conclude(obj, diagnosis.observations, now=now, temporary_failure=diagnosis.temporary_failure)
