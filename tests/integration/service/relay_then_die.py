"""A relay process that dies at the worst moment: after the broker confirmed its publish, before its
mark-as-sent commit. It runs the relay's own steps (claim, send) and then SIGKILLs itself.

Run with the sidecar's environment (``DJANGO_SETTINGS_MODULE``, ``RABBITSYNC_*``, maybe
``DATABASE_URL``); prints the event ids it published before dying.
"""

import os
import signal

import django

django.setup()

from rabbitsync.django.conf import get_settings  # noqa: E402
from rabbitsync.django.relay import OutboxRelay  # noqa: E402

relay = OutboxRelay(get_settings(), sweep=False).start()
rows = relay.claim()
relay.send(rows)  # every confirm is in
print("published", *[row.event_id for row in rows], flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # ... and mark_sent never runs
