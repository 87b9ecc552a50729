"""The steady stream of writes through both clusters' REST APIs, as clients would send them.

Writers (a few threads per cluster) create and rename restaurants, add menu items and place orders,
each a write that commits one event. Menu items and orders refer to a few restaurants and menu items
seeded, and seen replicated, before the stream starts, so no write depends on replication during the
faults. Every attempt is recorded with its answer; the accounting counts events from the outboxes,
so a write whose answer was lost still counts if it committed.

The stream is paced by the fault plan: writers wait at the next fault's event count until that fault
has started, so a fast machine cannot run past the plan and a slow one still gets every fault.
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

from chaos.accounting import Attempt
from harness import polling

WRITERS_PER_CLUSTER = 2
SEED_RESTAURANTS = 3


@dataclass
class Seeds:
    restaurants: dict[str, list[str]] = field(default_factory=dict)
    menu_items: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """Per cluster: (restaurant id, menu item id) known to that cluster's order service."""


def request(method: str, url: str, body: dict[str, Any] | None = None, timeout: float = 10) -> tuple[int, Any]:
    """(status, parsed body); status 0 when no HTTP answer came."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        return e.code, None
    except (urllib.error.URLError, OSError, ValueError):
        return 0, None


def seed(urls: dict[str, dict[str, str]], timeout: float = 120) -> Seeds:
    """A few restaurants and menu items per cluster, waited for in every service that refers to them."""
    seeds = Seeds()
    for cluster, base in urls.items():
        ids = []
        for index in range(SEED_RESTAURANTS):
            status, body = request(
                "POST", base["restaurant"] + "/api/restaurants/", {"name": f"seed {cluster} {index}"}
            )
            if status != 201:
                raise RuntimeError(f"seeding {cluster}: POST restaurant answered {status}")
            ids.append(str(body["id"]))
        seeds.restaurants[cluster] = ids
    for cluster, base in urls.items():
        items = []
        for rid in seeds.restaurants[cluster]:
            polling.eventually(
                lambda r=rid, b=base: (
                    request("POST", b["restaurant-menu"] + "/api/menu-items/", _menu_item(r))[0] == 201 or None
                ),
                timeout,
                f"seed menu item for {rid} in {cluster}",
                interval=1.0,
            )
            status, body = request("GET", base["restaurant-menu"] + "/api/menu-items/?limit=1000")
            items += [(rid, str(i["id"])) for i in (body or {}).get("items", []) if str(i.get("restaurant_id")) == rid]
        seeds.menu_items[cluster] = items
    for cluster, base in urls.items():
        for _, item in seeds.menu_items[cluster]:
            polling.eventually(
                lambda i=item, b=base: _in_list(b["order"] + "/api/menu-items/?limit=1000", i) or None,
                timeout,
                f"seed menu item {item} in {cluster}/order",
                interval=1.0,
            )
    return seeds


def _in_list(url: str, entity_id: str) -> bool:
    status, body = request("GET", url)
    return status == 200 and any(str(i.get("id")) == entity_id for i in (body or {}).get("items", []))


def _menu_item(restaurant_id: str) -> dict[str, Any]:
    return {"restaurant_id": restaurant_id, "name": f"dish {uuid.uuid4().hex[:6]}", "price_cents": 1250}


class Stream:
    """Writers sharing one accepted-writes counter, held at ``barrier`` until the next fault starts."""

    def __init__(
        self,
        urls: dict[str, dict[str, str]],
        seeds: Seeds,
        target: int,
        seed: int = 0,
        writers: int = WRITERS_PER_CLUSTER,
    ) -> None:
        self.urls, self.seeds, self.target, self.writers = urls, seeds, target, writers
        self.accepted = 0
        self.attempts: list[Attempt] = []
        self.barrier = target
        self._cond = threading.Condition()
        self._rng = random.Random(seed)
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def hold_at(self, events: int) -> None:
        with self._cond:
            self.barrier = min(events, self.target)
            self._cond.notify_all()

    def wait_for(self, events: int) -> None:
        """Block the caller (the fault injector) until ``events`` writes were accepted, or the stream ended."""
        with self._cond:
            self._cond.wait_for(lambda: self.accepted >= events or self._stop.is_set())

    def wait_stopped(self, timeout: float) -> bool:
        """True once the stream has ended (joined or stopped), False after ``timeout`` seconds of it running."""
        return self._stop.wait(timeout)

    def start(self) -> None:
        for cluster in self.urls:
            for index in range(self.writers):
                thread = threading.Thread(target=self._write, args=(cluster,), name=f"writer-{cluster}-{index}")
                thread.start()
                self._threads.append(thread)

    def join(self) -> None:
        for thread in self._threads:
            thread.join()
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def _permit(self) -> bool:
        with self._cond:
            self._cond.wait_for(
                lambda: self.accepted < self.barrier or self.accepted >= self.target or self._stop.is_set()
            )
            return self.accepted < self.target and not self._stop.is_set()

    def _write(self, cluster: str) -> None:
        mine: list[str] = list(self.seeds.restaurants[cluster])
        while self._permit():
            service, method, url, body = self._next(cluster, mine)
            started = time.monotonic()
            status, answer = request(method, url, body)
            with self._cond:
                self.attempts.append(Attempt(started, cluster, service, status))
                if 200 <= status < 300:
                    self.accepted += 1
                    self._cond.notify_all()
            if status == 201 and service == "restaurant" and isinstance(answer, dict):
                mine.append(str(answer["id"]))
                del mine[: max(0, len(mine) - 200)]
            if not 200 <= status < 300:
                time.sleep(0.2)

    def _next(self, cluster: str, mine: list[str]) -> tuple[str, str, str, dict[str, Any]]:
        base = self.urls[cluster]
        roll = self._rng.random()
        if roll < 0.35:
            body = {"name": f"r {uuid.uuid4().hex[:8]}", "cuisine": "chaos"}
            return "restaurant", "POST", base["restaurant"] + "/api/restaurants/", body
        if roll < 0.65:
            rid = self._rng.choice(mine)
            return (
                "restaurant",
                "PATCH",
                f"{base['restaurant']}/api/restaurants/{rid}/",
                {"name": f"renamed {uuid.uuid4().hex[:8]}"},
            )
        if roll < 0.85:
            return (
                "restaurant-menu",
                "POST",
                base["restaurant-menu"] + "/api/menu-items/",
                _menu_item(self._rng.choice(self.seeds.restaurants[cluster])),
            )
        rid, item = self._rng.choice(self.seeds.menu_items[cluster])
        order = {"restaurant_id": rid, "customer_name": "chaos", "items": [{"menu_item_id": item, "quantity": 1}]}
        return "order", "POST", base["order"] + "/api/orders/", order
