"""The two settings that decide what a stranger can learn from a service: the debug page and the signing key.

Pure functions of the environment, so the rules are unit-tested without starting Django. The debug
page shows ``os.environ``, broker and database credentials included, so it is off unless asked for;
the development signing key is public (it is in this repository), so it is refused unless debugging.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

DEVELOPMENT_KEY = "dev-only-insecure-key-set-DJANGO_SECRET_KEY"


def debug(environ: Mapping[str, str]) -> bool:
    """``DJANGO_DEBUG`` is ``1``, ``true`` or ``yes``; anything else, or nothing, is off."""
    return environ.get("DJANGO_DEBUG", "").lower() in {"1", "true", "yes"}


def secret_key(environ: Mapping[str, str], *, debugging: bool) -> str:
    """``DJANGO_SECRET_KEY``; the public development key only while debugging, a refusal otherwise."""
    key = environ.get("DJANGO_SECRET_KEY", "")
    if key and key != DEVELOPMENT_KEY:
        return key
    if debugging:
        return DEVELOPMENT_KEY
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set (or is the public development key): give it from a Secret, "
        "or set DJANGO_DEBUG=true on a developer's machine"
    )
