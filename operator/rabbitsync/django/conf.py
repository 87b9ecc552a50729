"""Settings of the rabbitsync Django app: one typed model, read lazily from a namespaced dict and the env.

Every value is looked up at call time (``get_settings()``), never frozen at import, so Django's
``override_settings(RABBITSYNC={...})`` works in tests. Precedence: ``settings.RABBITSYNC[KEY]``,
then the environment variable ``RABBITSYNC_<KEY>``, then the field's default. Wrong types and
unknown keys are refused with :class:`ImproperlyConfigured` naming the key and where it came from;
Django reads the settings while it starts (handler autodiscovery), so a mistake stops the process
there instead of surfacing at the first event.

The fields the operator injects into the sidecar (broker URI, who we are, the subscriptions, the
health server's address) are :class:`~rabbitsync.topology.sidecar_contract.SidecarConfig`, the
operator-sidecar contract; :class:`Settings` extends it with tuning, and every variable name is
derived from the field name by the contract's ``env_name``, so both sides always agree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from django.core import exceptions
from pydantic import ValidationError, field_validator
from pydantic_core import ErrorDetails

from rabbitsync.events import Origin
from rabbitsync.topology.sidecar_contract import SecretKey, SidecarConfig, env_name


class ImproperlyConfigured(exceptions.ImproperlyConfigured):
    """A rabbitsync setting is missing or malformed."""


class Settings(SidecarConfig):
    """The whole configuration of a rabbitsync process (web or sidecar). Frozen; unknown fields refused."""

    heartbeat: int = 30
    """Seconds. Short enough that a dead peer is noticed within a minute, long enough for slow links."""
    blocked_connection_timeout: float = 60.0
    """Seconds a connection may stay blocked by a broker alarm before we drop and redial it."""
    reconnect_max_delay: float = 15.0
    """Cap of the jittered exponential backoff between reconnect attempts, seconds."""
    confirm_timeout: float = 30.0
    """Seconds to wait for publisher confirms before treating the broker as away."""
    max_body_bytes: int = 1024 * 1024
    """Largest message body the sidecar parses; a bigger one goes to the dead-letter queue unread
    (reason ``too-large``). Bounds what one event costs in memory with a prefetch of hundreds."""
    handler_deadline: float = 300.0
    """Seconds one handler may run: past it the sidecar's liveness fails, the kubelet restarts it and
    the unacknowledged delivery comes back. 0 disables the deadline."""
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
    handler_modules: tuple[str, ...] = ("rabbitsync_handlers",)
    """Module names autodiscovered in every installed app to register handlers: a list, or a
    comma-separated string (what an environment variable can carry)."""

    @field_validator("handler_modules", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @property
    def origin(self) -> Origin:
        if not self.cluster or not self.service:
            raise ImproperlyConfigured("RABBITSYNC CLUSTER and SERVICE must be set to publish or consume")
        return Origin(self.cluster, self.namespace, self.service)


_SECRET_FIELDS = frozenset(
    name for name, field in Settings.model_fields.items() if any(isinstance(m, SecretKey) for m in field.metadata)
)
"""Fields read from a Secret (:class:`~rabbitsync.topology.sidecar_contract.SecretKey`)."""


def resolve(overrides: Mapping[str, Any], environ: Mapping[str, str]) -> Settings:
    """Settings from a ``RABBITSYNC`` dict and an environment; pure, for tests and for ``get_settings``."""
    if not isinstance(overrides, Mapping):
        raise ImproperlyConfigured(f"settings.RABBITSYNC must be a dict, not {type(overrides).__name__}")
    fields = {name.upper(): name for name in Settings.model_fields}
    unknown = sorted(str(key) for key in overrides if key not in fields)
    if unknown:
        raise ImproperlyConfigured(f"unknown RABBITSYNC keys: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for key, name in fields.items():
        if key in overrides:
            values[name], origins[name] = overrides[key], f"settings.RABBITSYNC[{key!r}]"
        elif env_name(name) in environ:
            values[name], origins[name] = environ[env_name(name)], f"environment variable {env_name(name)}"
    try:
        return Settings.model_validate(values)
    except ValidationError as e:
        errors = e.errors()
    # Raised outside the handler and unchained: pydantic's own text quotes every input, the broker URI too.
    raise ImproperlyConfigured("; ".join(_describe(error, origins) for error in errors))


def get_settings() -> Settings:
    from django.conf import settings

    return resolve(getattr(settings, "RABBITSYNC", {}), os.environ)


def _describe(error: ErrorDetails, origins: Mapping[str, str]) -> str:
    # loc[0] is the field; the rest is a path inside it (an item of the subscriptions).
    name, *inside = (str(part) for part in error["loc"])
    where = "".join(f"[{part}]" for part in inside)
    # The broker URI holds a password: say what is wrong with it, never what it was.
    got = "" if name in _SECRET_FIELDS else f" (got {error['input']!r:.100})"
    return f"RABBITSYNC {name.upper()}{where} from {origins[name]}: {error['msg']}{got}"
