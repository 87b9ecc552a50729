"""The broker's management HTTP API: what exists, with counts; and the services' users and their rights.

AMQP cannot list queues or bindings, nor manage users, so both go over HTTP (stdlib ``urllib``:
the operator image needs no HTTP library). Message and consumer counts are the management plugin's statistics,
refreshed every few seconds, which is fine for status; nothing destructive is decided from them
(before deleting an obsolete delay queue, the admin checks its emptiness over AMQP with a passive
declare: quorum queues refuse ``if-empty`` deletes). A user's password travels only in a request
body, never in a path, an exception or a log line.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Collection, Iterable
from typing import Any
from urllib.parse import quote, urlencode

from rabbitsync.amqp.claim import ClusterClaim
from rabbitsync.amqp.identity import BrokerUser
from rabbitsync.amqp.snapshot import BrokerSnapshot
from rabbitsync.topology import naming
from rabbitsync.topology.model import Binding, Observed, ObservedExchange, ObservedQueue, Policy
from rabbitsync.transport import (
    AccessRefused,
    BrokerEndpoint,
    BrokerError,
    BrokerUnreachable,
    NotFound,
    Timeouts,
    tls_context,
)

_PAGE_SIZE = 500


class ManagementClient:
    """Observes one subscription's objects, or the whole vhost at once, on one broker; manages users."""

    def __init__(self, endpoint: BrokerEndpoint, timeouts: Timeouts | None = None) -> None:
        api = endpoint.management()
        self._base = api.base_url
        self._auth = "Basic " + base64.b64encode(f"{api.username}:{api.password}".encode()).decode()
        self._vhost = quote(endpoint.vhost, safe="")
        self._timeout = (timeouts or Timeouts()).operation_s
        # Built here, not per request: a CA bundle that is not PEM is an InvalidEndpoint at once.
        self._context = tls_context(endpoint.ca_pem) if self._base.startswith("https") else None

    def observe(
        self,
        exchange: str,
        main_queue: str,
        names: Collection[str] | None = None,
        *,
        shared: Collection[str] = (),
        exchanges: Collection[str] = (),
    ) -> Observed:
        """The exchange, the queues named after ``main_queue`` (only ``names``, if given) and the
        ``shared`` ones, every binding to them, the ``exchanges`` that exist, and the policy named after
        ``main_queue`` (``Broker.observe``)."""
        if names is None:
            found = [*self._queues(main_queue), *self._named(shared)]
        else:
            found = self._named(dict.fromkeys((*names, *shared)))
        queues = {q.name: q for q in found}
        bindings: set[Binding] = set()
        for name in queues:
            bindings |= self._bindings_to(name)
        policy = self._policy(main_queue)
        return Observed(
            exchange=self._exchange(exchange),
            queues=queues,
            bindings=frozenset(bindings),
            exchanges={name: seen for name in exchanges if (seen := self._exchange(name))},
            policies={policy.name: policy} if policy else {},
        )

    def _policy(self, name: str) -> Policy | None:
        try:
            return _policy(self._get(f"/api/policies/{self._vhost}/{quote(name, safe='')}"))
        except NotFound:
            return None

    def policies(self) -> list[Policy]:
        """Every policy of the vhost."""
        return [_policy(found) for found in self._get(f"/api/policies/{self._vhost}") or []]

    def put_policy(self, policy: Policy) -> None:
        """Create or replace ``policy`` in the vhost."""
        self._send(
            "PUT",
            f"/api/policies/{self._vhost}/{quote(policy.name, safe='')}",
            {
                "pattern": policy.pattern,
                "definition": dict(policy.definition),
                "priority": policy.priority,
                "apply-to": policy.apply_to,
            },
        )

    def delete_policy(self, name: str) -> None:
        """Delete the policy; none there is no error."""
        with contextlib.suppress(NotFound):
            self._send("DELETE", f"/api/policies/{self._vhost}/{quote(name, safe='')}")

    def snapshot(self) -> BrokerSnapshot:
        """The whole vhost in four listings (exchanges, queues, bindings, policies), for the drift sweep."""
        columns = "name,type,durable,arguments"
        exchanges = {
            e["name"]: _observed_exchange(e)
            for e in self._get(f"/api/exchanges/{self._vhost}?{urlencode({'columns': columns})}")
        }
        columns = "source,destination,destination_type,routing_key"
        bindings = [
            Binding(exchange=b["source"], queue=b["destination"], routing_key=b["routing_key"])
            for b in self._get(f"/api/bindings/{self._vhost}?{urlencode({'columns': columns})}")
            if b["source"] and b.get("destination_type", "queue") == "queue"
        ]
        return BrokerSnapshot(
            exchanges=exchanges,
            queues=self._queues(None),
            bindings=bindings,
            policies={policy.name: policy for policy in self.policies()},
        )

    def _exchange(self, name: str) -> ObservedExchange | None:
        try:
            found = self._get(f"/api/exchanges/{self._vhost}/{quote(name, safe='')}")
        except NotFound:
            return None
        return _observed_exchange(found)

    def _queues(self, main_queue: str | None) -> list[ObservedQueue]:
        """The queues named after ``main_queue``; every queue of the vhost for ``None``."""
        return self.queues_matching(naming.owned_queue_pattern(main_queue) if main_queue is not None else ".*")

    def _named(self, names: Iterable[str]) -> list[ObservedQueue]:
        """Those of ``names`` that exist, one call each: the cost does not grow with the vhost."""
        return [queue for name in names if (queue := self._queue(name))]

    def _queue(self, name: str) -> ObservedQueue | None:
        try:
            return _observed_queue(self._get(f"/api/queues/{self._vhost}/{quote(name, safe='')}"))
        except NotFound:
            return None

    def queues_matching(self, pattern: str) -> list[ObservedQueue]:
        """The vhost's queues whose name matches the regex ``pattern``, with their counts."""
        found: list[ObservedQueue] = []
        page, pages = 1, 1
        while page <= pages:
            query = urlencode(
                {
                    "page": page,
                    "page_size": _PAGE_SIZE,
                    "name": pattern,
                    "use_regex": "true",
                    "columns": "name,arguments,messages,consumers,messages_dlx",
                }
            )
            body = self._get(f"/api/queues/{self._vhost}?{query}")
            pages = int(body.get("page_count", 1))
            found += [_observed_queue(item) for item in body.get("items", [])]
            page += 1
        return found

    def _bindings_to(self, queue: str) -> set[Binding]:
        try:
            items = self._get(f"/api/queues/{self._vhost}/{quote(queue, safe='')}/bindings")
        except NotFound:  # deleted between listing and now: it simply has no bindings
            return set()
        return {
            Binding(exchange=b["source"], queue=queue, routing_key=b["routing_key"])
            for b in items
            # The default exchange's implicit binding cannot be removed and is not ours to manage.
            if b["source"] and b.get("destination_type", "queue") == "queue"
        }

    def put_user(self, user: BrokerUser) -> None:
        """Create or update ``user`` with its password, tags (none), permissions, topic permissions and limits."""
        name, vhost = quote(user.username, safe=""), self._vhost
        # No tags: the user may not log into the management UI or API, only speak AMQP.
        self._send("PUT", f"/api/users/{name}", {"password": user.password, "tags": ""})
        p = user.permissions
        self._send(
            "PUT", f"/api/permissions/{vhost}/{name}", {"configure": p.configure, "write": p.write, "read": p.read}
        )
        t = user.topic
        self._send(
            "PUT", f"/api/topic-permissions/{vhost}/{name}", {"exchange": t.exchange, "write": t.write, "read": t.read}
        )
        for limit, value in (
            ("max-connections", user.limits.max_connections),
            ("max-channels", user.limits.max_channels),
        ):
            self._send("PUT", f"/api/user-limits/{name}/{limit}", {"value": value})

    def delete_user(self, username: str) -> bool:
        """Delete the user (its permissions and limits go with it); False if there was none."""
        try:
            self._send("DELETE", f"/api/users/{quote(username, safe='')}")
        except NotFound:
            return False
        return True

    def topic_writers(self, exchange: str) -> dict[str, str]:
        """User -> the regex of routing keys it may publish to ``exchange`` (its topic write permission)."""
        items = self._get(f"/api/vhosts/{self._vhost}/topic-permissions")
        return {str(i["user"]): str(i["write"]) for i in items or [] if i.get("exchange") == exchange}

    def exchange_policy(self, exchange: str) -> str | None:
        """The policy in effect on ``exchange`` (``None`` if none, or no such exchange)."""
        try:
            found = self._get(f"/api/exchanges/{self._vhost}/{quote(exchange, safe='')}")
        except NotFound:
            return None
        return found.get("policy") or None

    def claim_cluster(self, claim: ClusterClaim) -> ClusterClaim:
        """The claim in force on ``claim``'s name, recording ``claim`` first if there is none."""
        path = f"/api/global-parameters/{quote(claim.parameter_name, safe='')}"
        try:
            return ClusterClaim.from_value(self._get(path)["value"])
        except NotFound:
            pass
        self._send("PUT", path, {"name": claim.parameter_name, "value": claim.to_value()})
        # Two installs that both found no claim both wrote one: the re-read tells the earlier writer it lost.
        return ClusterClaim.from_value(self._get(path)["value"])

    def _get(self, path: str) -> Any:
        return self._send("GET", path)

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        # Only reads ask for JSON: RabbitMQ 3.10's user-limits resource answers 406 to a write that does.
        headers = {"Authorization": self._auth, "Accept": "application/json" if method == "GET" else "*/*"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        request = urllib.request.Request(self._base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout, context=self._context) as response:
                raw = response.read()
            return json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raise _http_error(e, method, path) from e
        except (OSError, http.client.HTTPException) as e:  # URLError, TLS, timeouts, refused, reset, bad replies
            raise BrokerUnreachable(f"management API at {self._base} unreachable: {e}") from e
        except ValueError as e:
            raise BrokerError(f"management API returned invalid JSON for {method} {path}") from e


def _http_error(e: urllib.error.HTTPError, method: str, path: str) -> BrokerError:
    # The request's body (a password) and the response's are never quoted: only the method and path.
    if e.code in (401, 403):
        return AccessRefused(f"management API refused access ({e.code}) to {method} {path}")
    if e.code == 404:
        return NotFound(f"management API: {method} {path} not found (does the vhost exist?)")
    if e.code >= 500:
        return BrokerUnreachable(f"management API failed ({e.code}) on {method} {path}")
    return BrokerError(f"management API answered {e.code} to {method} {path}")


def _policy(found: dict[str, Any]) -> Policy:
    return Policy(
        name=str(found["name"]),
        pattern=found["pattern"],
        definition=found.get("definition") or {},
        priority=int(found.get("priority") or 0),
        apply_to=found.get("apply-to", "all"),
    )


def _observed_exchange(item: dict[str, Any]) -> ObservedExchange:
    return ObservedExchange(
        name=item["name"],
        type=item["type"],
        durable=bool(item["durable"]),
        arguments=item.get("arguments") or {},
    )


def _observed_queue(item: dict[str, Any]) -> ObservedQueue:
    return ObservedQueue(
        name=item["name"],
        arguments=item.get("arguments") or {},
        # Absent until the first statistics emission after the queue was declared.
        messages=int(item.get("messages") or 0),
        consumers=int(item.get("consumers") or 0),
        dead_lettering=int(item.get("messages_dlx") or 0),
    )
