"""``/api/restaurants/`` (the synced copy, read-only) and ``/api/menu-items/[<id>/]`` (owned here)."""

import uuid

from common import events
from common.http import ApiError, get_or_404, include_deleted, listing, methods, read_json
from common.replication import write_local
from common.validation import Field, validate
from django.db import transaction
from django.http import HttpResponse, JsonResponse

from restaurant_menu.models import MenuItem, Restaurant

ITEM_FIELDS = {
    "restaurant_id": Field("uuid", required=True),
    "name": Field(str, required=True, max_length=200, blank=False),
    "description": Field(str, default="", max_length=1000),
    "price_cents": Field(int, required=True, min_value=0, max_value=10_000_000),
    "available": Field(bool, default=True),
}
# The restaurant an item belongs to is fixed at creation.
CHANGE_FIELDS = {name: field for name, field in ITEM_FIELDS.items() if name != "restaurant_id"}


def restaurants(request):
    rows = Restaurant.objects.all() if include_deleted(request) else Restaurant.objects.filter(deleted=False)
    return listing(request, rows, Restaurant.as_json)


def items(request):
    rows = MenuItem.objects.all() if include_deleted(request) else MenuItem.objects.filter(deleted=False)
    restaurant = request.GET.get("restaurant_id")
    if restaurant:
        try:
            rows = rows.filter(restaurant_id=uuid.UUID(restaurant))
        except ValueError:
            raise ApiError(400, "query parameter restaurant_id must be a UUID") from None
    return listing(request, rows, MenuItem.as_json)


def create(request):
    values = validate(read_json(request), ITEM_FIELDS)
    if not Restaurant.objects.filter(pk=values["restaurant_id"], deleted=False).exists():
        raise ApiError(
            400,
            "invalid request body",
            {"restaurant_id": f"unknown restaurant {values['restaurant_id']} (deleted, or not synced here yet)"},
        )
    row = write_local(MenuItem, uuid.uuid4(), values, event_type=events.MENU_ITEM_CREATED)
    return JsonResponse(row.as_json(), status=201)


def _live(pk, *, lock=False):
    rows = MenuItem.objects.select_for_update() if lock else MenuItem.objects
    return get_or_404(rows.filter(deleted=False), "menu item", pk=pk)


def read(request, pk):
    return JsonResponse(_live(pk).as_json())


def change(request, pk):
    values = validate(read_json(request), CHANGE_FIELDS, partial=True)
    with transaction.atomic():
        _live(pk, lock=True)
        row = write_local(MenuItem, pk, values, event_type=events.MENU_ITEM_UPDATED)
    return JsonResponse(row.as_json())


def delete(request, pk):
    with transaction.atomic():
        _live(pk, lock=True)
        write_local(MenuItem, pk, {"deleted": True}, event_type=events.MENU_ITEM_DELETED)
    return HttpResponse(status=204)


restaurant_collection = methods(get=restaurants)
item_collection = methods(get=items, post=create)
item = methods(get=read, patch=change, delete=delete)
