"""Names and grammars every layer of rabbitsync agrees on, defined once at the bottom of the package.

The CRD schema, the event envelope, the operator and the sidecar all check or produce these values;
each used to carry its own copy, and copies drift (an event type the CRD accepted could not be
published). This module imports nothing from rabbitsync (only pydantic), so any layer may use it.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

EVENT_TYPE_MAX_LENGTH = 120
"""Event types become routing keys (at most 255 bytes on the wire); 120 leaves room for a prefix."""

EVENT_TYPE_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$"
"""Dot-separated words starting with a letter. The topic wildcards ``*`` and ``#`` are excluded (a
publish would mean something no binding means), and so are empty words (``a..b``, ``a.``)."""

_EVENT_TYPE = re.compile(EVENT_TYPE_PATTERN)

EventType = Annotated[str, Field(min_length=1, max_length=EVENT_TYPE_MAX_LENGTH, pattern=EVENT_TYPE_PATTERN)]
"""An event type as a pydantic field: what the CRD schema, the consumer contract and the envelope accept."""

DEFAULT_EXCHANGE = "rabbitsync.events"
"""The durable topic exchange shared by every cluster, unless a SyncBroker names another."""

SECRET_URI_KEY = "uri"
"""Key of a broker Secret holding the full ``amqp://`` or ``amqps://`` URI."""

SECRET_MANAGEMENT_URI_KEY = "managementUri"
"""Optional key of a broker Secret holding the management API URI."""


def is_event_type(value: str) -> bool:
    """Whether ``value`` may be subscribed to and published as an event type."""
    # fullmatch, not match: Python's `$` also matches before a final newline, pydantic's and the API
    # server's do not.
    return len(value) <= EVENT_TYPE_MAX_LENGTH and _EVENT_TYPE.fullmatch(value) is not None


def routing_key(namespace: str, event_type: str) -> str:
    """The routing key of ``event_type`` published in ``namespace``: the namespace is the sync domain.

    The same namespace name in two clusters is one domain (that is how east and west converge); two
    namespaces never see each other's events, because the operator binds and the broker's topic
    permissions allow only keys of the subscriber's or publisher's own namespace. Namespace names are
    DNS labels (no dots), so the first word of a key is always the whole namespace.
    """
    return f"{namespace}.{event_type}"


def broker_username(cluster: str, namespace: str, service: str) -> str:
    """The broker user of one service in one cluster, as the AMQP ``user_id`` of its events shows it."""
    return f"rabbitsync.{cluster}.{namespace}.{service}"


def service_secret_name(service: str) -> str:
    """The Secret, in the service's namespace, holding that service's own broker credentials (key ``uri``)."""
    return f"rabbitsync-{service}"


BACKFILL_MARK = "@backfill"
"""The word that separates an event type from the target queue in a snapshot's routing key. ``@`` is in
no event type, namespace or queue name, so the key splits one way only."""


def backfill_routing_key(namespace: str, event_type: str, queue: str) -> str:
    """The routing key of a snapshot event of ``event_type`` addressed to ``queue`` alone.

    It starts like the live key (``<namespace>.<type>``), so the broker's topic permissions that let a
    service publish only its declared types of its own namespace bind snapshots too; the queue's own
    binding (:func:`backfill_binding_key`) is the only one it matches, so no other subscriber sees it.
    """
    return f"{routing_key(namespace, event_type)}.{BACKFILL_MARK}.{queue}"


def backfill_binding_key(namespace: str, queue: str) -> str:
    """The one extra binding of a subscription's queue: snapshots of any type addressed to it."""
    return f"{namespace}.#.{BACKFILL_MARK}.{queue}"


def backfill_key_type(key: str, namespace: str, queue: str) -> str | None:
    """The event type a snapshot's routing key names, if ``key`` addresses ``queue`` in ``namespace``."""
    prefix, suffix = f"{namespace}.", f".{BACKFILL_MARK}.{queue}"
    if not (key.startswith(prefix) and key.endswith(suffix)):
        return None
    event_type = key[len(prefix) : len(key) - len(suffix)]
    return event_type if is_event_type(event_type) else None


def trace_name(exchange: str) -> str:
    """The exchange and stream where relays and sidecars leave one small record per event outcome.

    Derived from the shared exchange, like its unroutable queue, so that every cluster's operator,
    every service and the CLI agree on it without configuration (``rabbitsync trace`` reads it).
    """
    return f"{exchange}.trace"
