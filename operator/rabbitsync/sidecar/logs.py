"""JSON logs, one object per line, each carrying the id of the event being processed (or null).

The id lives in a context variable set around each delivery; the handler thread receives a copy
of the context, so lines logged by the service's own handler code carry it too.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime

current_event_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("rabbitsync_event_id", default=None)

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "event_id": getattr(record, "event_id", None) or current_event_id.get(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: str = "INFO") -> None:
    """Route every logger through one JSON handler on stderr (called by the sidecar's entry points)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # pika narrates every connection state change at INFO; keep its warnings, drop the chatter.
    logging.getLogger("pika").setLevel(logging.WARNING)
