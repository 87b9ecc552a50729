"""System checks (``manage.py check``, and before ``migrate``/``runserver``): misconfiguration found at
deploy time, with an id to look up, instead of at the first event.

What is checked, and why each is an error or only a warning:

- ``rabbitsync.E001`` the settings do not validate (a wrong type, an unknown key): nothing works.
- ``rabbitsync.E002`` a handler is registered for a type no event could carry (the grammar of
  :data:`rabbitsync.conventions.EventType`): it can never run.
- ``rabbitsync.E003`` ``"rabbitsync.sidecar"`` is installed without ``"rabbitsync.django"`` or before
  it: the sidecar builds on the library's models and handler discovery.
- ``rabbitsync.W001`` ``CLUSTER`` or ``SERVICE`` is unset: ``publish()`` and the sidecar refuse to run.
- ``rabbitsync.W002`` a subscribed type has no handler: its events go to the dead-letter queue.
- ``rabbitsync.W003`` a handler's type is in no subscription (only checked where ``SUBSCRIPTIONS``
  is set, i.e. in the sidecar): it never runs, a typo or a missing SyncSubscription.
- ``rabbitsync.W004`` the sidecar is installed but ``AMQP_URL`` is empty: events stay in the outbox.
- ``rabbitsync.W005`` ``AMQP_URL`` is no usable ``amqp://``/``amqps://`` URI: the relay and the sidecar
  can never connect (the message never shows the URI: it holds a password). A warning, not an error:
  an error would stop every management command, and the sidecar refuses that URI at start anyway
  with its own exit code (2) and message. ``manage.py check --fail-level WARNING`` makes it fatal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings as django_settings
from django.core.checks import CheckMessage, Error, Warning
from pydantic import TypeAdapter, ValidationError

from rabbitsync.conventions import EventType
from rabbitsync.django.conf import ImproperlyConfigured, Settings, get_settings
from rabbitsync.django.connection import endpoint
from rabbitsync.django.handlers import HandlerRegistry, registry
from rabbitsync.transport import InvalidEndpoint

_EVENT_TYPE: TypeAdapter[str] = TypeAdapter(EventType)
_LIBRARY, _SIDECAR = "rabbitsync.django", "rabbitsync.sidecar"


def check_rabbitsync(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """The check both apps register (the sidecar's too, so a missing library app is reported)."""
    messages = installed_apps(list(django_settings.INSTALLED_APPS))
    try:
        settings = get_settings()
    except ImproperlyConfigured as e:
        return [*messages, Error(str(e), hint="See rabbitsync.django.conf.Settings.", id="rabbitsync.E001")]
    sidecar = apps.is_installed(_SIDECAR)
    return [*messages, *configuration(settings, sidecar=sidecar), *handlers(settings, registry)]


def installed_apps(installed: list[str]) -> list[CheckMessage]:
    if _SIDECAR not in installed:
        return []
    if _LIBRARY not in installed or installed.index(_LIBRARY) > installed.index(_SIDECAR):
        return [
            Error(
                f"{_SIDECAR!r} needs {_LIBRARY!r} in INSTALLED_APPS, listed before it",
                hint=f'INSTALLED_APPS = [..., "{_LIBRARY}", "{_SIDECAR}", ...]',
                id="rabbitsync.E003",
            )
        ]
    return []


def configuration(settings: Settings, *, sidecar: bool) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if not settings.cluster or not settings.service:
        messages.append(
            Warning(
                "RABBITSYNC CLUSTER and SERVICE are not both set: publish() and the sidecar will refuse to run",
                hint="The operator sets RABBITSYNC_CLUSTER and RABBITSYNC_SERVICE in the pod; set them locally.",
                id="rabbitsync.W001",
            )
        )
    if settings.amqp_url:
        try:
            endpoint(settings)
        except InvalidEndpoint as e:
            messages.append(Warning(f"RABBITSYNC AMQP_URL is unusable: {e}", id="rabbitsync.W005"))
    elif sidecar:
        messages.append(
            Warning(
                "RABBITSYNC AMQP_URL is empty: published events wait in the outbox, nothing is consumed",
                hint="The operator sets RABBITSYNC_AMQP_URL from the service's Secret.",
                id="rabbitsync.W004",
            )
        )
    return messages


def handlers(settings: Settings, handlers: HandlerRegistry) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for event_type in sorted(handlers.types()):
        try:
            _EVENT_TYPE.validate_python(event_type)
        except ValidationError:
            messages.append(
                Error(f"handler for {event_type!r}: not a valid event type, it can never run", id="rabbitsync.E002")
            )
    if not settings.subscriptions:
        return messages
    subscribed = {t for spec in settings.subscriptions for t in spec.events}
    for event_type in sorted(subscribed - handlers.types()):
        messages.append(
            Warning(
                f"subscribed event type {event_type!r} has no handler: its events will be dead-lettered",
                hint=f"Register one with @handler({event_type!r}) in a rabbitsync_handlers module.",
                id="rabbitsync.W002",
            )
        )
    for event_type in sorted(handlers.types() - subscribed):
        messages.append(
            Warning(
                f"handler for {event_type!r}, which no subscription lists: it never runs",
                hint="Add the type to the service's SyncSubscription, or fix the handler's type.",
                id="rabbitsync.W003",
            )
        )
    return messages
