"""The fields a service's declarations (SyncPublication, SyncSubscription) share: which Deployment, which
event types, which broker.

One definition each, so the two kinds validate a service, an event list and a broker name alike; each
kind still says in its own words what the field means for it (``kubectl explain``).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from rabbitsync.api.meta import DNS1123_LABEL, DNS1123_SUBDOMAIN, immutable

MAX_EVENTS = 64


def service_field(verb: str) -> Any:
    """``spec.service``: the Deployment that ``verb`` ("publishes", "consumes") the events."""
    return Field(
        description=f"Name of the Deployment (same namespace) that {verb} the events; a DNS-1123 label.",
        min_length=1,
        max_length=63,
        pattern=DNS1123_LABEL,
    )


def events_field(description: str) -> Any:
    """``spec.events``: at least one event type, at most :data:`MAX_EVENTS`, no duplicates."""
    return Field(
        min_length=1,
        max_length=MAX_EVENTS,
        description=description,
        # "set" makes the API server refuse duplicates; CRD schemas may not use uniqueItems.
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


def broker_field(description: str) -> Any:
    """``spec.broker``: the name of the broker resource to use, ``default`` unless given; immutable."""
    return Field(
        default="default",
        description=description,
        min_length=1,
        max_length=253,
        pattern=DNS1123_SUBDOMAIN,
        json_schema_extra=immutable("broker"),
    )
