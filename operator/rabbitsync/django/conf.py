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
from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import ErrorDetails

from rabbitsync.events import Origin
from rabbitsync.topology.sidecar_contract import SecretKey, SidecarConfig, env_name

LEASE_MARGIN = 1.0
"""Seconds a lease must outlast the worst-case publish of a batch, for marking the rows sent. The
defaults leave far more (60 s against 30 s); tests with short leases need this floor only."""


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
    consume_workers: int = Field(default=1, ge=1, le=64)
    """Threads applying received events at once. Events for the same entity (``subject``) always go
    through the same thread, in order. More than 1 needs a database with concurrent writers
    (PostgreSQL); on SQLite, which has one writer, the sidecar uses 1 and says so."""
    relay_in_process: bool = True
    """Start a relay thread in any process that publishes, so events leave milliseconds after commit."""
    trace: bool = True
    """Append a small record of each event's outcome (published, applied, retried, dead-lettered) to the
    trace stream that ``rabbitsync trace`` reads; best effort, off the delivery path."""
    relay_batch_size: int = 500
    """Rows published per pipelined batch before waiting for the confirms."""
    relay_sweep_interval: float = 1.0
    """Seconds between sweeps for rows nobody woke the relay for (crashed publisher, lost wake-up)."""
    relay_lease: float = 60.0
    """Seconds a relay owns the rows it claimed; after that another relay may resend them. Must exceed
    ``confirm_timeout`` (a batch's worst-case publish) by :data:`LEASE_MARGIN`, or a slow broker
    makes a second relay send the same rows while the first still waits for their confirms."""
    relay_max_message_bytes: int = 16_000_000
    """Largest event body the relay sends. A larger row is parked at once (never retried): RabbitMQ
    closes the channel on a message above its ``max_message_size`` (16 MiB by default since 4.0)."""
    relay_max_attempts: int = 10
    """Refusals by the broker (nack, channel closed on the row) before a row is parked with the reason.
    A broker that is away costs no attempt; a returned (unroutable) row is never parked."""
    relay_retry_max_delay: float = 300.0
    """Cap of a refused row's own backoff (1 s, 2 s, 4 s...), seconds; the rows behind it go on."""
    relay_pending_max: int = 10_000
    """Row ids remembered for the fast path. Past it they are dropped for one full sweep of the
    outbox, so a relay that cannot send for a long time holds bounded memory and loses nothing."""
    version_max_skew: float = 600.0
    """Seconds a last-writer-wins version may be ahead of this process's clock. A version beyond it
    is refused (dead-lettered with the reason): trusted, it would win every later write, and
    versions of local writes would overflow the 64-bit column."""
    sent_retention: float = 86400.0
    """Seconds sent outbox rows are kept (for debugging) before the sidecar deletes them."""
    inbox_retention: float = 7 * 86400.0
    """Seconds inbox rows are kept. Must exceed the longest redelivery window (retries, outages)."""
    handler_modules: tuple[str, ...] = ("rabbitsync_handlers",)
    """Module names autodiscovered in every installed app to register handlers: a list, or a
    comma-separated string (what an environment variable can carry)."""

    @field_validator("relay_lease")
    @classmethod
    def _outlives_a_publish(cls, value: float, info: ValidationInfo) -> float:
        confirm = info.data.get("confirm_timeout")
        if confirm is not None and value < confirm + LEASE_MARGIN:
            raise ValueError(
                f"must be at least CONFIRM_TIMEOUT ({confirm:g} s) + {LEASE_MARGIN:g} s, "
                "or rows are sent twice while their confirms are awaited"
            )
        return value

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
