"""Reconciling one SyncBroker: can this cluster reach the broker, and does it hold the shared exchange?

The SyncBroker's own status answers "is the broker fine?" once, instead of every subscription that
uses it repeating the diagnosis. The shared exchange is declared here if missing (never deleted).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

from rabbitsync.transport.errors import BrokerError
from rabbitsync.amqp.sync import ensure_exchange
from rabbitsync.api.conditions import BROKER_REACHABLE, READY
from rabbitsync.operator import status as st
from rabbitsync.operator.kube import MissingReference, resolve_broker
from rabbitsync.operator.reconcile import BrokerFactory, Outcome


def reconcile_broker(
    api: client.ApiClient,
    namespace: str,
    name: str,
    meta: Mapping[str, Any],
    status: Mapping[str, Any],
    broker_factory: BrokerFactory,
    now: datetime | None = None,
) -> Outcome:
    temporary: str | None = None
    try:
        resolved = resolve_broker(api, namespace, name)
        message = ensure_exchange(broker_factory(resolved), resolved.exchange)
    except MissingReference as e:
        observations = [
            st.Observation(BROKER_REACHABLE, "Unknown", e.reason, str(e)),
            st.Observation(READY, "False", e.reason, str(e)),
        ]
        temporary = str(e)
    except BrokerError as e:
        reachable = "True" if e.reason == "PreconditionFailed" else "False"
        observations = [
            st.Observation(BROKER_REACHABLE, reachable, "Connected" if reachable == "True" else e.reason, str(e)),
            st.Observation(READY, "False", e.reason, str(e)),
        ]
        if not e.permanent:
            temporary = str(e)
    else:
        host = resolved.endpoint.host
        observations = [
            st.Observation(BROKER_REACHABLE, "True", "Connected", f"broker {host}"),
            st.Observation(READY, "True", "ExchangeReady", message),
        ]
    generation = meta.get("generation")
    conditions, notes = st.apply(
        st.conditions_of(status), observations, generation=generation, now=now or datetime.now(UTC)
    )
    return Outcome(
        status={"observedGeneration": generation, "conditions": st.dump(conditions)},
        notes=notes,
        temporary_failure=temporary,
    )
