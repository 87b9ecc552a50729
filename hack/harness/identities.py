"""Broker users for tests that play several services: one identity per service, as the operator makes them.

A receiving sidecar applies an event only if its AMQP ``user_id`` is the broker user of the service
its ``source`` names (``rabbitsync.sidecar.trust``), and RabbitMQ only lets a connection publish with
its own user name. So a test that publishes as service X must log in as X's user; the admin URL of
the harness broker would be refused. :class:`Identities` makes such users through the management
API on first use, with a random password and no right to configure anything, and deletes them all
at the end.
"""

from __future__ import annotations

import secrets
import urllib.error
import urllib.parse
from dataclasses import dataclass, field

from harness.rabbitmq import management_request

NOTHING = "^$"
"""A permission pattern matching no resource name."""


@dataclass(frozen=True)
class Permissions:
    """Regular expressions over resource names in the vhost, as RabbitMQ's ``set_permissions`` takes them."""

    configure: str = NOTHING
    write: str = ".*"
    read: str = ".*"


def create_user(amqp_url: str, management_url: str, user: str, permissions: Permissions = Permissions()) -> str:
    """Create (or reset) ``user`` with a fresh password and ``permissions`` on ``amqp_url``'s vhost;
    the AMQP URL that logs in as it."""
    password = secrets.token_urlsafe(32)
    quoted = urllib.parse.quote(user, safe="")
    management_request(management_url, "PUT", f"/api/users/{quoted}", {"password": password, "tags": ""})
    body = {"configure": permissions.configure, "write": permissions.write, "read": permissions.read}
    management_request(management_url, "PUT", f"/api/permissions/{_vhost(amqp_url)}/{quoted}", body)
    parts = urllib.parse.urlsplit(amqp_url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quoted}:{urllib.parse.quote(password, safe='')}@{host}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def delete_user(management_url: str, user: str) -> None:
    """Delete ``user``; one already gone is fine."""
    try:
        management_request(management_url, "DELETE", f"/api/users/{urllib.parse.quote(user, safe='')}")
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise


@dataclass
class Identities:
    """Users made on demand, each once, and deleted together by :meth:`delete_all`."""

    amqp_url: str
    """The admin URL: where the users' URLs point (host, port, vhost)."""
    management_url: str
    permissions: Permissions = field(default_factory=Permissions)
    _urls: dict[str, str] = field(default_factory=dict, repr=False)  # the URLs hold the passwords

    def url(self, user: str) -> str:
        """The AMQP URL logging in as ``user``, who is created on first use."""
        if user not in self._urls:
            self._urls[user] = create_user(self.amqp_url, self.management_url, user, self.permissions)
        return self._urls[user]

    def delete_all(self) -> None:
        for user in self._urls:
            delete_user(self.management_url, user)
        self._urls.clear()


def _vhost(amqp_url: str) -> str:
    path = urllib.parse.urlsplit(amqp_url).path
    return urllib.parse.quote(urllib.parse.unquote(path[1:]) if len(path) > 1 else "/", safe="")
