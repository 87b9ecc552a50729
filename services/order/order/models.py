"""Orders (owned here) and the copies of restaurants and menu items an order refers to."""

import uuid
from typing import Any

from common.copies import RestaurantCopy
from django.db import models

from rabbitsync.django.models import VersionedModel


class Restaurant(RestaurantCopy):
    """Copy of the restaurant service's restaurants (an order names one)."""

    class Meta(RestaurantCopy.Meta):
        db_table = "order_restaurant"


class MenuItem(VersionedModel):
    """Read-only copy, written by MENU_ITEM_* events alone: what an order line needs."""

    id = models.UUIDField(primary_key=True)
    restaurant_id = models.UUIDField(db_index=True, null=True)
    name = models.CharField(max_length=200, default="")
    price_cents = models.PositiveIntegerField(default=0)
    available = models.BooleanField(default=True)
    deleted = models.BooleanField(default=False)

    class Meta:
        db_table = "order_menuitem"
        ordering = ["restaurant_id", "name", "id"]

    def __str__(self) -> str:
        return self.name

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "restaurant_id": str(self.restaurant_id),
            "name": self.name,
            "price_cents": self.price_cents,
            "available": self.available,
            "deleted": self.deleted,
            "version": self.sync_version,
        }


class Order(VersionedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    restaurant_id = models.UUIDField(db_index=True, null=True)
    customer_name = models.CharField(max_length=200, default="")
    items = models.JSONField(default=list)
    """Lines as ordered: menu item id, name and price at the time, quantity. Prices may change later."""
    total_cents = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=20, default="placed")
    placed_at = models.DateTimeField(null=True)
    deleted = models.BooleanField(default=False)
    """Part of every replicated entity (see common.replication); orders are never deleted today."""

    class Meta:
        db_table = "order_order"
        ordering = ["-placed_at", "id"]

    def __str__(self) -> str:
        return f"order {self.id}"

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "restaurant_id": str(self.restaurant_id),
            "customer_name": self.customer_name,
            "items": self.items,
            "total_cents": self.total_cents,
            "status": self.status,
            "placed_at": self.placed_at.isoformat() if self.placed_at else None,
        }

    def as_json(self) -> dict[str, Any]:
        return {**self.snapshot(), "version": self.sync_version, "last_writer": self.sync_source}
