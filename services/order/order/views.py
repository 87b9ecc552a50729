"""``/api/restaurants/`` and ``/api/menu-items/`` (synced copies, read-only); ``/api/orders/[<id>/]``."""

import uuid

from common import events
from common.http import ApiError, get_or_404, include_deleted, listing, methods, read_json
from common.replication import write_local
from common.validation import Field, Invalid, validate
from django.http import JsonResponse
from django.utils import timezone

from order.models import MenuItem, Order, Restaurant

ORDER_FIELDS = {
    "restaurant_id": Field("uuid", required=True),
    "customer_name": Field(str, required=True, max_length=200, blank=False),
    "items": Field(list, required=True),
}
LINE_FIELDS = {
    "menu_item_id": Field("uuid", required=True),
    "quantity": Field(int, default=1, min_value=1, max_value=100),
}
MAX_LINES = 50


def restaurants(request):
    rows = Restaurant.objects.all() if include_deleted(request) else Restaurant.objects.filter(deleted=False)
    return listing(request, rows, Restaurant.as_json)


def menu_items(request):
    rows = MenuItem.objects.all() if include_deleted(request) else MenuItem.objects.filter(deleted=False)
    return listing(request, rows, MenuItem.as_json)


def orders(request):
    return listing(request, Order.objects.filter(deleted=False), Order.as_json)


def _lines(restaurant_id, raw_lines):
    """Order lines priced from the local menu copy; every problem reported at once, by position."""
    if not raw_lines:
        raise Invalid({"items": "must list at least one menu item"})
    if len(raw_lines) > MAX_LINES:
        raise Invalid({"items": f"must list at most {MAX_LINES} lines"})
    errors, lines = {}, []
    for index, raw in enumerate(raw_lines):
        try:
            line = validate(raw, LINE_FIELDS)
        except Invalid as e:
            errors.update({f"items[{index}].{k}": v for k, v in e.errors.items()})
            continue
        item = MenuItem.objects.filter(pk=line["menu_item_id"], deleted=False).first()
        if item is None or item.restaurant_id != restaurant_id:
            errors[f"items[{index}].menu_item_id"] = f"no menu item {line['menu_item_id']} at this restaurant"
        elif not item.available:
            errors[f"items[{index}].menu_item_id"] = f"{item.name} is not available"
        else:
            lines.append(
                {
                    "menu_item_id": str(item.id),
                    "name": item.name,
                    "quantity": line["quantity"],
                    "price_cents": item.price_cents,
                }
            )
    if errors:
        raise Invalid(errors)
    return lines


def create(request):
    values = validate(read_json(request), ORDER_FIELDS)
    restaurant = values["restaurant_id"]
    if not Restaurant.objects.filter(pk=restaurant, deleted=False).exists():
        raise ApiError(
            400,
            "invalid request body",
            {"restaurant_id": f"unknown restaurant {restaurant} (deleted, or not synced here yet)"},
        )
    lines = _lines(restaurant, values["items"])
    row = write_local(
        Order,
        uuid.uuid4(),
        {
            "restaurant_id": restaurant,
            "customer_name": values["customer_name"],
            "items": lines,
            "total_cents": sum(line["price_cents"] * line["quantity"] for line in lines),
            "status": "placed",
            "placed_at": timezone.now(),
        },
        event_type=events.ORDER_CREATED,
    )
    return JsonResponse(row.as_json(), status=201)


def read(request, pk):
    return JsonResponse(get_or_404(Order.objects.filter(deleted=False), "order", pk=pk).as_json())


restaurant_collection = methods(get=restaurants)
menu_item_collection = methods(get=menu_items)
order_collection = methods(get=orders, post=create)
order = methods(get=read)
