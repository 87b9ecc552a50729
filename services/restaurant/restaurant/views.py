"""``/api/restaurants/``: create and list; ``/api/restaurants/<id>/``: read, change, delete."""

import uuid

from common import events
from common.http import get_or_404, include_deleted, listing, methods, read_json
from common.replication import write_local
from common.validation import Field, validate
from django.db import transaction
from django.http import HttpResponse, JsonResponse

from restaurant.models import Restaurant

FIELDS = {
    "name": Field(str, required=True, max_length=200, blank=False),
    "email": Field("email", default="", max_length=254),
    "address": Field(str, default="", max_length=500),
    "cuisine": Field(str, default="", max_length=100),
}


def create(request):
    values = validate(read_json(request), FIELDS)
    row = write_local(Restaurant, uuid.uuid4(), values, event_type=events.RESTAURANT_CREATED)
    return JsonResponse(row.as_json(), status=201)


def index(request):
    rows = Restaurant.objects.all() if include_deleted(request) else Restaurant.objects.filter(deleted=False)
    return listing(request, rows, Restaurant.as_json)


def _live(pk, *, lock=False):
    rows = Restaurant.objects.select_for_update() if lock else Restaurant.objects
    return get_or_404(rows.filter(deleted=False), "restaurant", pk=pk)


def read(request, pk):
    return JsonResponse(_live(pk).as_json())


def change(request, pk):
    values = validate(read_json(request), FIELDS, partial=True)
    with transaction.atomic():
        _live(pk, lock=True)
        row = write_local(Restaurant, pk, values, event_type=events.RESTAURANT_UPDATED)
    return JsonResponse(row.as_json())


def delete(request, pk):
    with transaction.atomic():
        _live(pk, lock=True)
        write_local(Restaurant, pk, {"deleted": True}, event_type=events.RESTAURANT_DELETED)
    return HttpResponse(status=204)


collection = methods(get=index, post=create)
item = methods(get=read, patch=change, delete=delete)
