"""Menu items (owned here) and the copy of restaurants this service keeps from RESTAURANT_* events."""

import uuid
from typing import Any

from common.copies import RestaurantCopy
from django.db import models

from rabbitsync.django.models import VersionedModel


class Restaurant(RestaurantCopy):
    """Copy of the restaurant service's restaurants (a menu item belongs to one)."""

    class Meta(RestaurantCopy.Meta):
        db_table = "restaurant_menu_restaurant"


class MenuItem(VersionedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No foreign key: events from another service arrive in any order, and an item replicated from
    # the other cluster may land before its restaurant does. The API checks the reference instead.
    restaurant_id = models.UUIDField(db_index=True)
    name = models.CharField(max_length=200, default="")
    description = models.CharField(max_length=1000, blank=True, default="")
    price_cents = models.PositiveIntegerField(default=0)
    available = models.BooleanField(default=True)
    deleted = models.BooleanField(default=False)

    class Meta:
        db_table = "restaurant_menu_menuitem"
        ordering = ["restaurant_id", "name", "id"]

    def __str__(self) -> str:
        return self.name

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "restaurant_id": str(self.restaurant_id),
            "name": self.name,
            "description": self.description,
            "price_cents": self.price_cents,
            "available": self.available,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            **self.snapshot(),
            "deleted": self.deleted,
            "version": self.sync_version,
            "last_writer": self.sync_source,
        }
