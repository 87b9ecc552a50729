"""rabbitsync's Django library: transactional publish (outbox), idempotent handlers (inbox), LWW.

Add ``"rabbitsync.django"`` to ``INSTALLED_APPS`` (and ``"rabbitsync.sidecar"`` where the service runs
the consumer, ``manage.py rabbitsync_sidecar``). The public names below are loaded lazily
(PEP 562), because Django imports this package before its app registry is ready and models
cannot be imported that early.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rabbitsync.django.conf import ImproperlyConfigured, Settings, get_settings
    from rabbitsync.django.database import database_config
    from rabbitsync.django.handlers import handler, registry
    from rabbitsync.django.inbox import NoHandler, Outcome, Reject, apply
    from rabbitsync.django.lww import lww_upsert, next_version
    from rabbitsync.django.models import VersionedModel
    from rabbitsync.django.outbox import publish
    from rabbitsync.django.snapshots import SnapshotEvent, snapshot_source
    from rabbitsync.events.ordering import wins

_EXPORTS = {
    "ImproperlyConfigured": "conf",
    "NoHandler": "inbox",
    "Outcome": "inbox",
    "Reject": "inbox",
    "Settings": "conf",
    "SnapshotEvent": "snapshots",
    "VersionedModel": "models",
    "apply": "inbox",
    "database_config": "database",
    "get_settings": "conf",
    "handler": "handlers",
    "lww_upsert": "lww",
    "next_version": "lww",
    "publish": "outbox",
    "registry": "handlers",
    "snapshot_source": "snapshots",
    "wins": "rabbitsync.events.ordering",
}

__all__ = [
    "ImproperlyConfigured",
    "NoHandler",
    "Outcome",
    "Reject",
    "Settings",
    "SnapshotEvent",
    "VersionedModel",
    "apply",
    "database_config",
    "get_settings",
    "handler",
    "lww_upsert",
    "next_version",
    "publish",
    "registry",
    "snapshot_source",
    "wins",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module if "." in module else f"{__name__}.{module}"), name)
