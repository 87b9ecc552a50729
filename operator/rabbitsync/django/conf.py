"""Settings of the rabbitsync Django app, read lazily from one namespaced dict with env fallbacks.

Every value is looked up at call time (``get_settings()``), never frozen at import, so Django's
``override_settings(RABBITSYNC={...})`` works in tests. Precedence: ``settings.RABBITSYNC[KEY]``,
then the environment variable ``RABBITSYNC_<KEY>``, then the default below.

Environment the operator injects into the sidecar container (and that the service container can
share for publishing):

- ``RABBITSYNC_AMQP_URL``: ``amqp://`` or ``amqps://`` URI of the shared broker.
- ``RABBITSYNC_CLUSTER``, ``RABBITSYNC_NAMESPACE``, ``RABBITSYNC_SERVICE``: who we are; they form
  the ``source`` of published events and recognise our own events coming back.
- ``RABBITSYNC_EXCHANGE``: the topic exchange (default ``rabbitsync.events``).
- ``RABBITSYNC_SUBSCRIPTIONS``: JSON list of ``rabbitsync.topology.consumer.ConsumerSpec``, the
  queues the sidecar consumes.
- ``RABBITSYNC_HTTP_PORT``: health and metrics port of the sidecar (default 8088); ``RABBITSYNC_HTTP_HOST``
  the address it binds (default 0.0.0.0, the pod IP when injected).

Tuning keys (same precedence) are the other fields of :class:`Settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from rabbitsync.events import Origin
from rabbitsync.topology import naming

ENV_PREFIX = "RABBITSYNC_"


class ImproperlyConfigured(Exception):
    """A rabbitsync setting is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    amqp_url: str = ""
    """Broker URI. Empty means "not configured": publish() still writes the outbox, nothing is sent."""
    cluster: str = ""
    namespace: str = "default"
    service: str = ""
    exchange: str = naming.DEFAULT_EXCHANGE
    subscriptions: str = "[]"
    """JSON list of ConsumerSpec; the operator's contract, parsed by the sidecar."""
    http_port: int = 8088
    http_host: str = "0.0.0.0"
    """Address of the health/metrics server; the operator injects the pod IP."""
    heartbeat: int = 30
    """Seconds. Short enough that a dead peer is noticed within a minute, long enough for slow links."""
    blocked_connection_timeout: float = 60.0
    """Seconds a connection may stay blocked by a broker alarm before we drop and redial it."""
    reconnect_max_delay: float = 15.0
    """Cap of the jittered exponential backoff between reconnect attempts, seconds."""
    confirm_timeout: float = 30.0
    """Seconds to wait for publisher confirms before treating the broker as away."""
    relay_in_process: bool = True
    """Start a relay thread in any process that publishes, so events leave milliseconds after commit."""
    relay_batch_size: int = 500
    """Rows published per pipelined batch before waiting for the confirms."""
    relay_sweep_interval: float = 1.0
    """Seconds between sweeps for rows nobody woke the relay for (crashed publisher, lost wake-up)."""
    relay_lease: float = 30.0
    """Seconds a relay owns the rows it claimed; after that another relay may resend them."""
    sent_retention: float = 86400.0
    """Seconds sent outbox rows are kept (for debugging) before the sidecar deletes them."""
    inbox_retention: float = 7 * 86400.0
    """Seconds inbox rows are kept. Must exceed the longest redelivery window (retries, outages)."""
    handler_modules: str = "rabbitsync_handlers"
    """Module name autodiscovered in every installed app to register handlers."""

    @property
    def origin(self) -> Origin:
        if not self.cluster or not self.service:
            raise ImproperlyConfigured("RABBITSYNC CLUSTER and SERVICE must be set to publish or consume")
        return Origin(self.cluster, self.namespace, self.service)


def resolve(overrides: Mapping[str, Any], environ: Mapping[str, str]) -> Settings:
    """Settings from a ``RABBITSYNC`` dict and an environment; pure, for tests and for ``get_settings``."""
    known = {f.name.upper(): f for f in fields(Settings)}
    unknown = set(overrides) - set(known)
    if unknown:
        raise ImproperlyConfigured(f"unknown RABBITSYNC keys: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for key, field in known.items():
        if key in overrides:
            raw: Any = overrides[key]
        elif ENV_PREFIX + key in environ:
            raw = environ[ENV_PREFIX + key]
        else:
            continue
        values[field.name] = _coerce(key, raw, field.type)
    return Settings(**values)


def get_settings() -> Settings:
    from django.conf import settings

    return resolve(getattr(settings, "RABBITSYNC", {}), os.environ)


def _coerce(key: str, raw: Any, type_name: Any) -> Any:
    # Field types are strings under `from __future__ import annotations`.
    try:
        if type_name == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(raw)
            return text in {"1", "true", "yes", "on"}
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
        return str(raw)
    except (TypeError, ValueError) as e:
        raise ImproperlyConfigured(f"RABBITSYNC {key}: cannot read {raw!r} as {type_name}") from e
