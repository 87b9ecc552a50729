"""Every failure the CLI can meet, as one line and an exit code scripts can rely on.

The one place where the broker's errors (:mod:`rabbitsync.transport.errors`), the Kubernetes
client's (``ApiException``, kubeconfig errors) and the operating system's become what a person reads:
one line on stderr, never a traceback, never a password. Subcommands raise these or let those
through; ``main`` calls :func:`explain` once.

Exit codes: 0 all good; 1 problems found or nothing matched; 2 usage, configuration or connection
error (argparse uses 2 for usage errors too); 130 interrupted.
"""

from __future__ import annotations

import json
import re

from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError as Urllib3Error

from rabbitsync.transport import BrokerError

OK = 0
PROBLEMS = 1
ERROR = 2
INTERRUPTED = 130

EXIT_CODES_HELP = """\
exit codes:
  0    all good
  1    problems found (not Ready, parity problems) or nothing matched (--id, filters, names)
  2    usage, configuration or connection error (Kubernetes API, broker)
  130  interrupted"""

_PASSWORD = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@\s]*@")


class CliError(Exception):
    """A failure already worded for the person at the terminal."""

    exit_code = ERROR


class UsageError(CliError):
    """The command line asks for something impossible or ambiguous."""


class NothingMatched(CliError):
    """No resource, dead letter or id matched what was asked for."""

    exit_code = PROBLEMS


class InCluster(CliError):
    """A failure talking to one cluster's API server, worded with that cluster's name in front."""

    def __init__(self, cluster: str, error: Exception) -> None:
        line, self.exit_code = explain(error)
        super().__init__(f"{cluster}: {line}")


def redact(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` replaced by ``***``."""
    return _PASSWORD.sub(r"\g<scheme>\g<user>:***@", text)


def explain(error: BaseException) -> tuple[str, int]:
    """The one line (without the program name) and the exit code for ``error``."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", INTERRUPTED
    if isinstance(error, CliError):
        return redact(str(error)), error.exit_code
    if isinstance(error, BrokerError):
        return redact(f"broker: {_message(error)}"), ERROR
    if isinstance(error, ApiException):
        return redact(f"Kubernetes API: {_api_message(error)}"), ERROR
    if isinstance(error, ConfigException):
        return redact(f"kubeconfig: {_message(error)}"), ERROR
    if isinstance(error, Urllib3Error | OSError):
        return redact(f"cannot reach the Kubernetes API or a file: {_message(error)}"), ERROR
    return redact(f"unexpected {type(error).__name__}: {_message(error)} (--debug shows the traceback)"), ERROR


def _message(error: BaseException) -> str:
    """The first non-empty text along the ``raise ... from`` chain, on one line.

    Some errors carry none of their own (pika's ``AMQPConnectionError()`` for a refused connection):
    the cause then says what happened, or at least its type does.
    """
    seen: BaseException | None = error
    while seen is not None:
        text = " ".join(str(seen).split())
        if text and text not in ("()", f"{type(seen).__name__}()"):
            return text
        seen = seen.__cause__ or seen.__context__
    return type(error).__name__


def _api_message(error: ApiException) -> str:
    status = f"{error.status} {error.reason}".strip()
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        body = None
    detail = body.get("message") if isinstance(body, dict) else None
    return f"{status}: {' '.join(str(detail).split())}" if detail else status
