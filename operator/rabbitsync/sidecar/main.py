"""``rabbitsync-sidecar``: the console entry point, for images that do not ship a manage.py.

The sidecar runs the service's own handlers, so it needs the service's Django settings:
``DJANGO_SETTINGS_MODULE`` must name them, and the project must be importable (the current
directory is added to ``sys.path``, as ``manage.py`` does for its own directory).
"""

from __future__ import annotations

import os
import sys

_MISSING_SETTINGS = """\
rabbitsync-sidecar: DJANGO_SETTINGS_MODULE is not set.
The sidecar applies events with the service's handlers and database, so it needs the service's
Django settings, e.g.  DJANGO_SETTINGS_MODULE=mysite.settings rabbitsync-sidecar
(or run `python manage.py rabbitsync_sidecar` in the service's image).
"""


def main() -> int:
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        sys.stderr.write(_MISSING_SETTINGS)
        return 2
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    import django

    django.setup()
    from rabbitsync.sidecar.runner import run

    return run()


if __name__ == "__main__":
    sys.exit(main())
