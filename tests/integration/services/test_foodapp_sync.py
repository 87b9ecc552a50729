"""The example services through a real RabbitMQ: web process + ``rabbitsync_sidecar`` per service,
queues declared from the SyncSubscriptions in ``manifests/services`` as the operator declares them.

Two pretend clusters (``east``, ``west``) share the broker and a namespace, as the overlays do.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.integration

SYNC_TIMEOUT = 20.0


def same_row(services, path, entity_id, fields):
    """The row as every service shows it, when all of them show the same one; else None."""
    rows = [svc.find(path, entity_id) for svc in services]
    if any(row is None for row in rows):
        return None
    projected = [{k: row[k] for k in fields} for row in rows]
    return projected[0] if all(p == projected[0] for p in projected) else None


def test_restaurant_reaches_menu_and_order_services(deployed, eventually):
    restaurant = deployed("restaurant", "east")
    menu = deployed("restaurant-menu", "east")
    order = deployed("order", "east")

    rid = restaurant.call("POST", "/api/restaurants/", {"name": "Noodle Bar", "cuisine": "ramen"}).body["id"]
    fields = ("id", "name", "cuisine", "version")
    expected = {k: v for k, v in restaurant.call("GET", f"/api/restaurants/{rid}/").body.items() if k in fields}
    row = eventually(lambda: same_row([menu, order], "/api/restaurants/", rid, fields), "restaurant copies")
    assert row == expected

    # A menu item created on the copy reaches the order service, which can then take an order.
    mid = menu.call("POST", "/api/menu-items/", {"restaurant_id": rid, "name": "Shoyu", "price_cents": 1200}).body["id"]
    eventually(lambda: order.find("/api/menu-items/", mid), "menu item in the order service")
    placed = order.call(
        "POST",
        "/api/orders/",
        {"restaurant_id": rid, "customer_name": "Ada", "items": [{"menu_item_id": mid, "quantity": 2}]},
    )
    assert (placed.status, placed.body["total_cents"]) == (201, 2400)

    restaurant.call("PATCH", f"/api/restaurants/{rid}/", {"name": "Noodle House"})
    eventually(
        lambda: (same_row([menu, order], "/api/restaurants/", rid, ("name",)) or {}).get("name") == "Noodle House",
        "renamed copies",
    )

    restaurant.call("DELETE", f"/api/restaurants/{rid}/")
    eventually(
        lambda: menu.find("/api/restaurants/", rid) is None and order.find("/api/restaurants/", rid) is None,
        "deletion in the copies",
    )
    assert menu.call("POST", "/api/menu-items/", {"restaurant_id": rid, "name": "x", "price_cents": 1}).status == 400


def test_two_clusters_converge_on_every_write_and_on_concurrent_ones(deployed, eventually):
    east = deployed("restaurant", "east")
    west = deployed("restaurant", "west")
    fields = ("id", "name", "cuisine", "address", "version", "last_writer")

    rid = east.call("POST", "/api/restaurants/", {"name": "Curry House"}).body["id"]
    row = eventually(lambda: same_row([east, west], "/api/restaurants/", rid, fields), "west's copy")
    assert row["last_writer"].startswith("/clusters/east/")

    # Different entities written in both clusters at once: both end up everywhere.
    wid = west.call("POST", "/api/restaurants/", {"name": "Taco Stand"}).body["id"]
    east.call("PATCH", f"/api/restaurants/{rid}/", {"address": "2 High St"})
    eventually(lambda: same_row([east, west], "/api/restaurants/", wid, fields), "east's copy of west's")
    row = eventually(lambda: same_row([east, west], "/api/restaurants/", rid, fields), "the address in west")
    assert row["address"] == "2 High St"

    # One after the other: the later write has the higher version (one machine, one clock) and wins.
    east.call("PATCH", f"/api/restaurants/{rid}/", {"cuisine": "from east"})
    west.call("PATCH", f"/api/restaurants/{rid}/", {"cuisine": "from west"})
    row = eventually(lambda: same_row([east, west], "/api/restaurants/", rid, fields), "convergence")
    assert row["cuisine"] == "from west"

    # Truly concurrent writes, several rounds: whichever wins, both clusters keep the same one.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for round_ in range(5):
            writes = [
                pool.submit(svc.call, "PATCH", f"/api/restaurants/{rid}/", {"name": f"{svc.cluster} {round_}"})
                for svc in (east, west)
            ]
            assert [w.result().status for w in writes] == [200, 200]
    row = eventually(lambda: same_row([east, west], "/api/restaurants/", rid, fields), "convergence")
    assert row["name"] in {"east 4", "west 4"}

    # A deletion in one cluster is a deletion in the other.
    west.call("DELETE", f"/api/restaurants/{rid}/")
    eventually(lambda: east.call("GET", f"/api/restaurants/{rid}/").status == 404, "the deletion in east")
