"""Reading back what the product recorded: the services' tables, the dead-letter queues, the finalizers.

The services' SQLite files are read where the pod runner keeps the service's PersistentVolumeClaim
(``<service>-data``, as the manifests name it; a read-only connection beside the live writers, which
WAL allows); the PostgreSQL one through its URL. Values are
normalised (UUIDs, booleans, times, JSON) so a SQLite copy and a PostgreSQL copy of the same row compare
equal.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaos.accounting import Committed, DeadLetter, Place, Row
from chaos.lab import APP_NAMESPACE, POSTGRES_PLACE, Lab
from harness import operators, rabbitmq

ENTITY_TABLES = {
    "restaurant": ("restaurant_restaurant",),
    "restaurant-menu": ("restaurant_menu_restaurant", "restaurant_menu_menuitem"),
    "order": ("order_restaurant", "order_menuitem", "order_order"),
}
SERVICES = tuple(ENTITY_TABLES)
REASON_HEADER = "x-rabbitsync-reason"
RESOURCES = ("syncsubscriptions", "syncpublications", "syncbrokers", "clustersyncbrokers")


@dataclass(frozen=True)
class Database:
    place: Place
    sqlite: Path | None = None
    url: str | None = None


def database(lab: Lab, place: Place) -> Database:
    if place == POSTGRES_PLACE:
        return Database(place, url=lab.database.url)
    cluster, service = place
    path = lab.directory / "pods" / cluster / APP_NAMESPACE / "claims" / f"{service}-data" / f"{service}.sqlite3"
    if not path.exists():
        raise FileNotFoundError(f"no SQLite file for {cluster}/{service} at {path}")
    return Database(place, sqlite=path)


@contextlib.contextmanager
def _connect(db: Database) -> Iterator[Any]:
    if db.url is not None:
        import psycopg

        with psycopg.connect(db.url, connect_timeout=5) as server:
            yield server
        return
    local = sqlite3.connect(f"file:{db.sqlite}?mode=ro", uri=True, timeout=30)
    try:
        yield local
    finally:
        local.close()


def _query(db: Database, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with _connect(db) as conn:
        cursor = conn.cursor()
        cursor.execute(sql)
        columns = [d[0] for d in cursor.description]
        return columns, list(cursor.fetchall())


def committed(db: Database) -> list[Committed]:
    _, rows = _query(db, "SELECT event_id, type FROM rabbitsync_outbox")
    return [Committed(str(event_id), str(kind), db.place) for event_id, kind in rows]


def unsent(db: Database) -> int:
    _, rows = _query(db, "SELECT count(*) FROM rabbitsync_outbox WHERE sent_at IS NULL")
    return int(rows[0][0])


def applied(db: Database) -> list[str]:
    _, rows = _query(db, "SELECT event_id FROM rabbitsync_inbox")
    return [str(r[0]) for r in rows]


def entity_rows(db: Database, table: str) -> list[Row]:
    """Rows as (id, then the other columns by name), normalised across SQLite and PostgreSQL."""
    columns, rows = _query(db, f'SELECT * FROM "{table}"')
    order = sorted(range(len(columns)), key=lambda i: (columns[i] != "id", columns[i]))
    return [tuple(normalise(row[i]) for i in order) for row in rows]


def normalise(value: Any) -> object:
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, str) and value[:1] in ("[", "{"):
        with contextlib.suppress(ValueError):
            return json.dumps(json.loads(value), sort_keys=True)
    if isinstance(value, str) and len(value) == 36 and value.count("-") == 4:
        with contextlib.suppress(ValueError):
            return uuid.UUID(value).hex
    return value


# -- the broker's dead-letter queues -------------------------------------------------------------


def dead_letter_queues(lab: Lab) -> list[str]:
    queues = rabbitmq.management_get(lab.broker.management_url, "/api/queues/%2F?columns=name")
    assert isinstance(queues, list)
    return sorted(str(q["name"]) for q in queues if str(q["name"]).endswith(".dlq"))


def dead_letters(lab: Lab, queue: str, limit: int = 100_000) -> list[DeadLetter]:
    """The messages of one DLQ, requeued as they were (``ack_requeue_true``); bodies are not fetched whole."""
    path = f"/api/queues/%2F/{urllib.parse.quote(queue, safe='')}/get"
    body = {"count": limit, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 200}
    messages = rabbitmq.management_request(lab.broker.management_url, "POST", path, body)
    assert isinstance(messages, list)
    letters = []
    for message in messages:
        props = message.get("properties") or {}
        headers = props.get("headers") or {}
        letters.append(
            DeadLetter(
                queue,
                str(props.get("message_id", "")),
                str(headers.get(REASON_HEADER, "")),
                str(headers.get("x-first-death-reason", "")),
            )
        )
    return letters


QUEUE_COLUMNS = "name,messages_ready,messages_unacknowledged,messages_dlx,consumers,leader,online,members"


@dataclass(frozen=True)
class QueueState:
    name: str
    ready: int
    unacked: int
    dead_lettering: int
    """Expired or rejected, not yet confirmed by the dead-letter target (a quorum queue's at-least-once
    dead-lettering): the broker sends them on by itself, an unconfirmed batch each time its confirm
    timeout fires."""
    consumers: int
    leader: str
    online: int
    members: int

    @property
    def holding(self) -> bool:
        return bool(self.ready or self.unacked or self.dead_lettering)

    def describe(self) -> str:
        return (
            f"{self.name}: ready={self.ready} unacked={self.unacked} dlx={self.dead_lettering} "
            f"consumers={self.consumers} leader={self.leader} online={self.online}/{self.members}"
        )


def queue_states(lab: Lab) -> list[QueueState]:
    """Every queue but the DLQs (what they hold is checked apart), by name."""
    queues = rabbitmq.management_get(lab.broker.management_url, f"/api/queues/%2F?columns={QUEUE_COLUMNS}")
    assert isinstance(queues, list)
    return [
        QueueState(
            name=str(q["name"]),
            ready=int(q.get("messages_ready") or 0),
            unacked=int(q.get("messages_unacknowledged") or 0),
            dead_lettering=int(q.get("messages_dlx") or 0),
            consumers=int(q.get("consumers") or 0),
            leader=str(q.get("leader", "?")),
            online=len(q.get("online") or []),
            members=len(q.get("members") or []),
        )
        for q in sorted(queues, key=lambda q: str(q["name"]))
        if not str(q["name"]).endswith(".dlq")
    ]


def queue_depth(lab: Lab, queue: str) -> int:
    info = rabbitmq.management_get(lab.broker.management_url, f"/api/queues/%2F/{urllib.parse.quote(queue, safe='')}")
    assert isinstance(info, dict)
    return int(info.get("messages", 0) or 0)


# -- Kubernetes ------------------------------------------------------------------------------------


def stuck_finalizers(lab: Lab) -> list[str]:
    """rabbitsync resources being deleted that still carry finalizers (should be none once settled)."""
    stuck = []
    for cluster, kubeconfig in lab.kubeconfigs.items():
        for resource in RESOURCES:
            items = json.loads(operators.kubectl(kubeconfig, "get", resource, "-A", "-o", "json"))["items"]
            for item in items:
                meta = item["metadata"]
                if meta.get("deletionTimestamp") and meta.get("finalizers"):
                    where = f"{meta.get('namespace', '')}/{meta['name']}".lstrip("/")
                    stuck.append(f"{cluster} {resource} {where} since {meta['deletionTimestamp']}")
    return stuck
