"""The example services' JSON APIs against a real SQLite file, each service run as its own process.

No broker here: events stay in the outbox, where the tests read them; consumed events are handed to
the library's ``apply`` inside the service (what the sidecar does after decoding a delivery).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.integration

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def event(type_, data, *, subject, version, cluster="west", service="restaurant", namespace="foodapp"):
    """A CloudEvent as another service (by default: this one in cluster west) would publish it."""
    return {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "type": type_,
        "source": f"/clusters/{cluster}/namespaces/{namespace}/services/{service}",
        "subject": subject,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": data,
        "rabbitsyncversion": version,
    }


def restaurant_data(rid, name="Trattoria", **extra):
    return {"id": rid, "name": name, "email": "", "address": "", "cuisine": "italian", **extra}


# -- restaurant -----------------------------------------------------------------------------------


def test_restaurant_crud_and_the_events_it_publishes(run_service):
    svc = run_service("restaurant")
    created = svc.call(
        "POST", "/api/restaurants/", {"name": "Pizza Place", "email": "owner@pizza.example", "cuisine": "pizza"}
    )
    assert created.status == 201, created
    rid = created.body["id"]
    assert uuid.UUID(rid).version == 4
    assert created.body | {"version": 0, "last_writer": ""} == {
        "id": rid,
        "name": "Pizza Place",
        "email": "owner@pizza.example",
        "address": "",
        "cuisine": "pizza",
        "deleted": False,
        "version": 0,
        "last_writer": "",
    }
    assert created.body["last_writer"] == "/clusters/east/namespaces/foodapp/services/restaurant"

    assert [r["id"] for r in svc.items("/api/restaurants/")] == [rid]
    assert svc.call("GET", f"/api/restaurants/{rid}/").body["name"] == "Pizza Place"

    patched = svc.call("PATCH", f"/api/restaurants/{rid}/", {"address": "1 Main St"})
    assert patched.status == 200
    assert (patched.body["address"], patched.body["name"]) == ("1 Main St", "Pizza Place")
    assert patched.body["version"] > created.body["version"]

    deleted = svc.call("DELETE", f"/api/restaurants/{rid}/")
    assert (deleted.status, deleted.body) == (204, None)
    assert svc.call("GET", f"/api/restaurants/{rid}/").status == 404
    assert svc.call("PATCH", f"/api/restaurants/{rid}/", {"name": "x"}).status == 404
    assert svc.call("DELETE", f"/api/restaurants/{rid}/").status == 404
    assert svc.items("/api/restaurants/") == []
    [tombstone] = svc.items("/api/restaurants/?include_deleted=true")
    assert tombstone["deleted"] is True

    events = svc.outbox()
    assert [e["type"] for e in events] == ["RESTAURANT_CREATED", "RESTAURANT_UPDATED", "RESTAURANT_DELETED"]
    assert {e["subject"] for e in events} == {rid}
    assert {e["source"] for e in events} == {"/clusters/east/namespaces/foodapp/services/restaurant"}
    # Full snapshots (LWW keeps or drops a write whole), versions as the API reported them.
    assert events[1]["data"] == {
        "id": rid,
        "name": "Pizza Place",
        "email": "owner@pizza.example",
        "address": "1 Main St",
        "cuisine": "pizza",
    }
    assert [e["rabbitsyncversion"] for e in events[:2]] == [created.body["version"], patched.body["version"]]
    assert events[0]["rabbitsyncversion"] < events[1]["rabbitsyncversion"] < events[2]["rabbitsyncversion"]


def test_restaurant_events_carry_no_secret_even_when_a_client_sends_one(run_service):
    svc = run_service("restaurant")
    # The seed's signup sent a password along and published it raw; ours refuses the field outright.
    refused = svc.call("POST", "/api/restaurants/", {"name": "Seed", "email": "a@b.example", "password": "hunter2"})
    assert refused.status == 400
    assert refused.body["fields"] == {"password": "unknown field"}
    assert svc.outbox() == []
    svc.call("POST", "/api/restaurants/", {"name": "Safe"})
    assert all("password" not in json_text for json_text in map(str, svc.outbox()))


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "expected"),
    [
        ("GET", f"/api/restaurants/{UNKNOWN}/", None, 404, {"error": f"restaurant {UNKNOWN} not found"}),
        ("PATCH", f"/api/restaurants/{UNKNOWN}/", {"name": "x"}, 404, {"error": f"restaurant {UNKNOWN} not found"}),
        ("DELETE", f"/api/restaurants/{UNKNOWN}/", None, 404, {"error": f"restaurant {UNKNOWN} not found"}),
        ("GET", "/api/restaurants/not-a-uuid/", None, 404, {"error": "no such resource: /api/restaurants/not-a-uuid/"}),
        ("GET", "/api/nothing-here/", None, 404, {"error": "no such resource: /api/nothing-here/"}),
        ("PUT", "/api/restaurants/", {}, 405, {"error": "method PUT not allowed here"}),
        ("POST", "/api/restaurants/", None, 400, {"error": "the request body is empty; send a JSON object"}),
        (
            "POST",
            "/api/restaurants/",
            b"{name: 1}",
            400,
            {
                "error": "the request body is not valid JSON: Expecting property name enclosed in double quotes "
                "(line 1, column 2)"
            },
        ),
        (
            "POST",
            "/api/restaurants/",
            [1, 2],
            400,
            {"error": "invalid request body", "fields": {"body": "must be a JSON object"}},
        ),
        (
            "POST",
            "/api/restaurants/",
            {"email": "nope"},
            400,
            {
                "error": "invalid request body",
                "fields": {"name": "this field is required", "email": "must be an email address"},
            },
        ),
        (
            "POST",
            "/api/restaurants/",
            {"name": "   "},
            400,
            {"error": "invalid request body", "fields": {"name": "must not be blank"}},
        ),
        (
            "POST",
            "/api/restaurants/",
            {"name": 7, "cuisine": "x" * 101},
            400,
            {
                "error": "invalid request body",
                "fields": {"name": "must be a string", "cuisine": "must be at most 100 characters"},
            },
        ),
        ("GET", "/api/restaurants/?limit=0", None, 400, {"error": "query parameter limit must be between 1 and 1000"}),
        ("GET", "/api/restaurants/?offset=x", None, 400, {"error": "query parameter offset must be an integer"}),
    ],
)
def test_restaurant_errors_are_json_with_a_clear_message(run_service, method, path, body, status, expected):
    svc = run_service("restaurant")
    response = svc.call(method, path, raw=body) if isinstance(body, bytes) else svc.call(method, path, body)
    assert (response.status, response.body) == (status, expected)


def test_hostile_bodies_are_400s_and_the_service_keeps_serving(run_service):
    """Deep nesting used to raise RecursionError (a 500, and with DJANGO_DEBUG the debug page)."""
    svc = run_service("restaurant")
    bodies = [
        b"[" * 100_000,
        b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"name": NaN}',
        b'{"name": ' + b"9" * 5000 + b"}",
        b'{"name": "a\\u0000b"}',
        b'{"name": "\\ud800"}',
    ]
    for body in bodies:
        response = svc.call("POST", "/api/restaurants/", raw=body)
        assert response.status == 400, (body[:60], response)
        assert "error" in response.body
    assert svc.outbox() == []
    assert svc.call("GET", "/healthz").status == 200
    assert "Traceback" not in svc.logs("web")


def test_patch_must_change_something_known(run_service):
    svc = run_service("restaurant")
    rid = svc.call("POST", "/api/restaurants/", {"name": "A"}).body["id"]
    assert svc.call("PATCH", f"/api/restaurants/{rid}/", {}).body["fields"] == {"body": "no field to change"}
    assert svc.call("PATCH", f"/api/restaurants/{rid}/", {"id": UNKNOWN}).body["fields"] == {"id": "unknown field"}
    assert len(svc.outbox()) == 1


def test_restaurant_listing_pages(run_service):
    svc = run_service("restaurant")
    for name in ("C", "A", "B"):
        svc.call("POST", "/api/restaurants/", {"name": name})
    page = svc.call("GET", "/api/restaurants/?limit=2&offset=1").body
    assert ([r["name"] for r in page["items"]], page["count"]) == (["B", "C"], 3)


def test_restaurant_applies_the_other_clusters_writes_last_writer_wins(run_service):
    svc = run_service("restaurant")
    rid = str(uuid.uuid4())
    newer = event("RESTAURANT_UPDATED", restaurant_data(rid, "Newer"), subject=rid, version=200)
    older = event("RESTAURANT_CREATED", restaurant_data(rid, "Older"), subject=rid, version=100)
    # Out of order, and the newer one twice (a redelivery).
    assert svc.apply(newer, older, newer) == ["applied", "applied", "duplicate"]
    row = svc.call("GET", f"/api/restaurants/{rid}/").body
    assert (row["name"], row["version"], row["last_writer"]) == (
        "Newer",
        200,
        "/clusters/west/namespaces/foodapp/services/restaurant",
    )
    # Same version: the tie goes to the greater source, the same choice in every cluster.
    tie = event("RESTAURANT_UPDATED", restaurant_data(rid, "From east"), subject=rid, version=200, cluster="east2")
    svc.apply(tie)
    assert svc.call("GET", f"/api/restaurants/{rid}/").body["name"] == "Newer"  # "east2" < "west"
    # A local write afterwards takes a version above the replicated one, and wins everywhere.
    local = svc.call("PATCH", f"/api/restaurants/{rid}/", {"name": "Local"}).body
    assert local["version"] > 200


def test_restaurant_deletion_from_the_other_cluster_is_a_tombstone_a_late_update_cannot_undo(run_service):
    svc = run_service("restaurant")
    rid = str(uuid.uuid4())
    svc.apply(
        event("RESTAURANT_CREATED", restaurant_data(rid), subject=rid, version=100),
        event("RESTAURANT_DELETED", restaurant_data(rid), subject=rid, version=300),
        event("RESTAURANT_UPDATED", restaurant_data(rid, "Zombie"), subject=rid, version=200),
    )
    assert svc.call("GET", f"/api/restaurants/{rid}/").status == 404
    [row] = svc.items("/api/restaurants/?include_deleted=1")
    assert (row["deleted"], row["name"]) == (True, "Trattoria")


def test_own_events_coming_back_are_skipped(run_service):
    svc = run_service("restaurant")
    rid = svc.call("POST", "/api/restaurants/", {"name": "Mine"}).body["id"]
    [mine] = svc.outbox()
    assert svc.apply(mine) == ["own"]
    assert svc.call("GET", f"/api/restaurants/{rid}/").body["name"] == "Mine"


def test_a_copy_event_without_the_fields_it_needs_is_rejected_not_retried(run_service):
    svc = run_service("restaurant-menu")
    rid = str(uuid.uuid4())
    nameless = {k: v for k, v in restaurant_data(rid).items() if k != "name"}
    assert svc.apply(event("RESTAURANT_CREATED", nameless, subject=rid, version=10)) == ["rejected"]
    assert svc.items("/api/restaurants/") == []
    assert svc.apply(event("RESTAURANT_CREATED", restaurant_data(rid, "Pizza"), subject=rid, version=10)) == ["applied"]


# -- restaurant-menu ------------------------------------------------------------------------------


def test_menu_items_need_a_synced_restaurant_and_replicate_as_events(run_service):
    svc = run_service("restaurant-menu")
    rid = str(uuid.uuid4())
    body = {"restaurant_id": rid, "name": "Margherita", "price_cents": 950}
    refused = svc.call("POST", "/api/menu-items/", body)
    assert refused.status == 400
    assert refused.body["fields"] == {"restaurant_id": f"unknown restaurant {rid} (deleted, or not synced here yet)"}

    svc.apply(event("RESTAURANT_CREATED", restaurant_data(rid, "Pizza"), subject=rid, version=10))
    assert svc.items("/api/restaurants/") == [
        {"id": rid, "name": "Pizza", "cuisine": "italian", "deleted": False, "version": 10}
    ]

    created = svc.call("POST", "/api/menu-items/", body)
    assert created.status == 201, created
    mid = created.body["id"]
    assert svc.call("PATCH", f"/api/menu-items/{mid}/", {"price_cents": 1050, "available": False}).status == 200
    assert svc.call("PATCH", f"/api/menu-items/{mid}/", {"restaurant_id": rid}).body["fields"] == {
        "restaurant_id": "unknown field"
    }
    item = svc.call("GET", f"/api/menu-items/{mid}/").body
    assert (item["price_cents"], item["available"], item["restaurant_id"]) == (1050, False, rid)
    assert [i["id"] for i in svc.items(f"/api/menu-items/?restaurant_id={rid}")] == [mid]
    assert svc.items(f"/api/menu-items/?restaurant_id={UNKNOWN}") == []
    assert svc.call("DELETE", f"/api/menu-items/{mid}/").status == 204
    assert svc.items("/api/menu-items/") == []

    events = svc.outbox()
    assert [e["type"] for e in events] == ["MENU_ITEM_CREATED", "MENU_ITEM_UPDATED", "MENU_ITEM_DELETED"]
    assert events[1]["data"] == {
        "id": mid,
        "restaurant_id": rid,
        "name": "Margherita",
        "description": "",
        "price_cents": 1050,
        "available": False,
    }
    assert {e["source"] for e in events} == {"/clusters/east/namespaces/foodapp/services/restaurant-menu"}

    # A deleted restaurant takes no new items.
    svc.apply(event("RESTAURANT_DELETED", restaurant_data(rid, "Pizza"), subject=rid, version=20))
    assert svc.items("/api/restaurants/") == []
    assert svc.call("POST", "/api/menu-items/", body).status == 400


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            {},
            {
                "restaurant_id": "this field is required",
                "name": "this field is required",
                "price_cents": "this field is required",
            },
        ),
        (
            {"restaurant_id": "x", "name": "a", "price_cents": -1},
            {"restaurant_id": "must be a UUID string", "price_cents": "must be at least 0"},
        ),
        (
            {"restaurant_id": UNKNOWN, "name": "a", "price_cents": "9.50", "available": "yes"},
            {"price_cents": "must be an integer", "available": "must be true or false"},
        ),
        ({"restaurant_id": UNKNOWN, "name": "a", "price_cents": True}, {"price_cents": "must be an integer"}),
    ],
)
def test_menu_item_validation(run_service, body, fields):
    svc = run_service("restaurant-menu")
    response = svc.call("POST", "/api/menu-items/", body)
    assert (response.status, response.body) == (400, {"error": "invalid request body", "fields": fields})


def test_menu_items_from_the_other_cluster_converge(run_service):
    svc = run_service("restaurant-menu")
    rid, mid = str(uuid.uuid4()), str(uuid.uuid4())
    data = {"id": mid, "restaurant_id": rid, "name": "Soup", "description": "", "price_cents": 500, "available": True}
    # The item may arrive before its restaurant: no foreign key, nothing lost.
    assert svc.apply(event("MENU_ITEM_CREATED", data, subject=mid, version=5, service="restaurant-menu")) == ["applied"]
    assert svc.call("GET", f"/api/menu-items/{mid}/").body["name"] == "Soup"


# -- order ----------------------------------------------------------------------------------------


def test_orders_are_priced_from_the_synced_menu(run_service):
    svc = run_service("order")
    rid, other = str(uuid.uuid4()), str(uuid.uuid4())
    soup, pie, gone, off, elsewhere = (str(uuid.uuid4()) for _ in range(5))

    def item(mid, name, price, restaurant=rid, available=True):
        data = {
            "id": mid,
            "restaurant_id": restaurant,
            "name": name,
            "description": "",
            "price_cents": price,
            "available": available,
        }
        return event("MENU_ITEM_CREATED", data, subject=mid, version=1, service="restaurant-menu")

    outcomes = svc.apply(
        event("RESTAURANT_CREATED", restaurant_data(rid, "Diner"), subject=rid, version=1),
        event("RESTAURANT_CREATED", restaurant_data(other, "Other"), subject=other, version=1),
        item(soup, "Soup", 450),
        item(pie, "Pie", 300),
        item(gone, "Gone", 100),
        item(off, "Off", 100, available=False),
        item(elsewhere, "Elsewhere", 100, restaurant=other),
        event(
            "MENU_ITEM_DELETED",
            {
                "id": gone,
                "restaurant_id": rid,
                "name": "Gone",
                "description": "",
                "price_cents": 100,
                "available": True,
            },
            subject=gone,
            version=2,
            service="restaurant-menu",
        ),
    )
    assert outcomes == ["applied"] * 8
    assert {r["name"] for r in svc.items("/api/restaurants/")} == {"Diner", "Other"}
    assert {i["name"] for i in svc.items("/api/menu-items/")} == {"Soup", "Pie", "Off", "Elsewhere"}

    placed = svc.call(
        "POST",
        "/api/orders/",
        {
            "restaurant_id": rid,
            "customer_name": "Ada",
            "items": [{"menu_item_id": soup, "quantity": 2}, {"menu_item_id": pie}],
        },
    )
    assert placed.status == 201, placed
    order = placed.body
    assert (order["total_cents"], order["status"], order["customer_name"]) == (1200, "placed", "Ada")
    assert order["items"] == [
        {"menu_item_id": soup, "name": "Soup", "quantity": 2, "price_cents": 450},
        {"menu_item_id": pie, "name": "Pie", "quantity": 1, "price_cents": 300},
    ]
    assert svc.call("GET", f"/api/orders/{order['id']}/").body == order
    assert [o["id"] for o in svc.items("/api/orders/")] == [order["id"]]
    [published] = svc.outbox()
    assert (published["type"], published["subject"]) == ("ORDER_CREATED", order["id"])
    assert published["data"] == {k: v for k, v in order.items() if k not in ("version", "last_writer")}

    refused = svc.call(
        "POST",
        "/api/orders/",
        {
            "restaurant_id": rid,
            "customer_name": "Bob",
            "items": [
                {"menu_item_id": gone},
                {"menu_item_id": off},
                {"menu_item_id": elsewhere},
                {"quantity": 0},
                "soup",
            ],
        },
    )
    assert (refused.status, refused.body["fields"]) == (
        400,
        {
            "items[0].menu_item_id": f"no menu item {gone} at this restaurant",
            "items[1].menu_item_id": "Off is not available",
            "items[2].menu_item_id": f"no menu item {elsewhere} at this restaurant",
            "items[3].menu_item_id": "this field is required",
            "items[3].quantity": "must be at least 1",
            "items[4].body": "must be a JSON object",
        },
    )
    assert svc.call("POST", "/api/orders/", {"restaurant_id": rid, "customer_name": "Bob", "items": []}).body[
        "fields"
    ] == {"items": "must list at least one menu item"}
    assert svc.call("POST", "/api/orders/", {"restaurant_id": UNKNOWN, "customer_name": "Bob", "items": []}).body[
        "fields"
    ] == {"restaurant_id": f"unknown restaurant {UNKNOWN} (deleted, or not synced here yet)"}
    assert svc.call("GET", f"/api/orders/{UNKNOWN}/").status == 404
    assert len(svc.outbox()) == 1


def test_orders_from_the_other_cluster_are_copied(run_service):
    svc = run_service("order")
    oid, rid = str(uuid.uuid4()), str(uuid.uuid4())
    data = {
        "id": oid,
        "restaurant_id": rid,
        "customer_name": "Eve",
        "items": [],
        "total_cents": 0,
        "status": "placed",
        "placed_at": "2026-01-02T03:04:05.678901+00:00",
    }
    assert svc.apply(event("ORDER_CREATED", data, subject=oid, version=7, service="order")) == ["applied"]
    copied = svc.call("GET", f"/api/orders/{oid}/").body
    assert {k: v for k, v in copied.items() if k not in ("version", "last_writer")} == data


@pytest.mark.parametrize("name", ["restaurant", "restaurant-menu", "order"])
def test_healthz_and_committed_migrations(run_service, name):
    svc = run_service(name)
    assert svc.call("GET", "/healthz").body == {"status": "ok"}
    # Models and committed migrations agree: nothing left for makemigrations to write.
    assert svc.manage("makemigrations", "--check", "--dry-run", check=False).returncode == 0
