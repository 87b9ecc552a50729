"""Which handler failures are the infrastructure's, not the event's: they pause, they spend no attempt.

A database that cannot be reached fails every event alike, and retrying each one on the delivery
schedule only moves them all to the dead-letter queue while it is away. Django raises
``OperationalError`` for that (connection refused, server gone, timeout) and ``InterfaceError`` for a
connection already closed; the latter is not a ``DatabaseError``. Everything else (an
``IntegrityError``, a bug, a ``Reject``) is the handler's own failure and counts as an attempt.
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError


def unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database could not be reached or used, rather than the handler failed."""
    return isinstance(error, OperationalError | InterfaceError)
