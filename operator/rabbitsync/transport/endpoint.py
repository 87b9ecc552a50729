"""Where the broker is and how long to wait for it: the input of every connection rabbitsync opens.

The operator parses it from a SyncBroker's Secret, the Django side from ``settings.amqp_url``. The
management API URI is the Secret's ``managementUri`` when present; otherwise it is derived from the
AMQP URI: same host and credentials, ``http`` on port 15672 for ``amqp://`` and ``https`` on 15671 for
``amqps://`` (RabbitMQ's defaults). The vhost always comes from the AMQP URI's path (``/`` if empty).

A URI that cannot be used is refused with a message that never repeats any part of it: the common
mistake is a password holding ``/``, ``?`` or ``#`` (base64 makes them), which cuts the authority short
so that urllib reads the rest of the password as the port, path or fragment and quotes it in its
error. Such messages end up in conditions, Events and crash logs, so they say what is wrong and how
to fix it, and are never chained to urllib's.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

from rabbitsync.conventions import SECRET_MANAGEMENT_URI_KEY, SECRET_URI_KEY
from rabbitsync.transport.errors import InvalidEndpoint

_MANAGEMENT_DEFAULTS = {"amqp": ("http", 15672), "amqps": ("https", 15671)}
DEFAULT_USER = "guest"
"""RabbitMQ's (and pika's) user when a URI names none; its password is ``guest`` too."""
_ENCODING_HINT = (
    "percent-encode reserved characters in the user name and password ('/' as %2F, '?' as %3F, "
    "'#' as %23, '@' as %40, '%' as %25)"
)


@dataclass(frozen=True)
class Timeouts:
    """How long to wait for the broker. The defaults are the operator's, short on purpose: an
    unreachable broker must fail a reconcile fast, not block a kopf worker. Long-lived connections
    (relay, sidecar) pass their own from the Django settings."""

    connect_s: float = 3.0
    """TCP connect, seconds; the whole opening (TCP, TLS, AMQP handshake) may take twice that."""
    operation_s: float = 10.0
    """One AMQP method or HTTP request, seconds; declaring a quorum queue takes a Raft round."""
    heartbeat_s: int = 10
    """AMQP heartbeat interval, seconds: a peer silent for two intervals is taken for dead."""
    blocked_s: float = 10.0
    """Seconds a connection may stay blocked by a broker alarm before it is dropped and redialled."""


@dataclass(frozen=True)
class ManagementAPI:
    base_url: str
    username: str
    password: str


@dataclass(frozen=True, repr=False)
class BrokerEndpoint:
    """Connection details of one broker. ``repr`` hides the URIs: they carry passwords."""

    amqp_uri: str
    management_uri: str | None = None
    ca_pem: str | None = None

    def __post_init__(self) -> None:
        parts = _split(self.amqp_uri, SECRET_URI_KEY)
        if parts.scheme not in _MANAGEMENT_DEFAULTS or not parts.hostname:
            raise InvalidEndpoint("the broker uri must be amqp://host... or amqps://host...")
        if self.management_uri is not None:
            management = _split(self.management_uri, SECRET_MANAGEMENT_URI_KEY)
            if management.scheme not in ("http", "https") or not management.hostname:
                raise InvalidEndpoint(f"{SECRET_MANAGEMENT_URI_KEY} must be http://host... or https://host...")

    def __repr__(self) -> str:
        return f"BrokerEndpoint(host={self.host!r}, vhost={self.vhost!r}, tls={self.tls})"

    @property
    def host(self) -> str:
        return urlsplit(self.amqp_uri).hostname or ""

    @property
    def username(self) -> str:
        """The user the AMQP connection logs in as: what the broker checks a message's ``user_id`` against."""
        username = urlsplit(self.amqp_uri).username
        return unquote(username) if username is not None else DEFAULT_USER

    @property
    def tls(self) -> bool:
        return urlsplit(self.amqp_uri).scheme == "amqps"

    @property
    def vhost(self) -> str:
        path = urlsplit(self.amqp_uri).path
        return unquote(path[1:]) if len(path) > 1 else "/"

    def management(self) -> ManagementAPI:
        amqp = urlsplit(self.amqp_uri)
        if self.management_uri is not None:
            parts = urlsplit(self.management_uri)
            scheme, host, port = parts.scheme, parts.hostname, parts.port
            path = parts.path.rstrip("/")
            username = parts.username if parts.username is not None else amqp.username
            password = parts.password if parts.username is not None else amqp.password
        else:
            scheme, port = _MANAGEMENT_DEFAULTS[amqp.scheme]
            host, path, username, password = amqp.hostname, "", amqp.username, amqp.password
        netloc = f"[{host}]" if host and ":" in host else host
        if port is not None:
            netloc = f"{netloc}:{port}"
        return ManagementAPI(
            base_url=f"{scheme}://{netloc}{path}",
            # RabbitMQ's own defaults when the URI carries no credentials.
            username=unquote(username) if username is not None else DEFAULT_USER,
            password=unquote(password) if password is not None else "guest",
        )


def _split(uri: str, key: str) -> SplitResult:
    """``uri`` split, or :class:`InvalidEndpoint` saying what is wrong without quoting any of it."""
    parts: SplitResult | None = None
    try:
        parts = urlsplit(uri.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = None
    if parts is None:
        # Raised outside the handler, so not even as context: urllib's message quotes the "port" it
        # refused, which is often the password's tail.
        raise InvalidEndpoint(
            f"{key} is not a valid URI: its host, port or IPv6 address cannot be read; {_ENCODING_HINT}"
        )
    # An "@" after the authority means the authority ended early, inside the credentials: the path
    # or fragment would carry the rest of the password (into the vhost, or a log line).
    if "@" in parts.path or "@" in parts.query or "@" in parts.fragment:
        raise InvalidEndpoint(f"{key} is not a valid URI: an '@' follows the host; {_ENCODING_HINT}")
    return parts
