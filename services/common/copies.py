"""The read-only copy of a restaurant that the services downstream of `restaurant` keep.

Abstract, so each service still owns its table (and its migrations): only the shape is shared.
"""

from typing import Any

from django.db import models

from rabbitsync.django.models import VersionedModel


class RestaurantCopy(VersionedModel):
    """Written by RESTAURANT_* events alone; only what a menu or an order needs of a restaurant."""

    REPLICATED_FIELDS = ("name", "cuisine")

    id = models.UUIDField(primary_key=True)
    name = models.CharField(max_length=200, default="")
    cuisine = models.CharField(max_length=100, blank=True, default="")
    deleted = models.BooleanField(default=False)

    class Meta:
        abstract = True
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "cuisine": self.cuisine,
            "deleted": self.deleted,
            "version": self.sync_version,
        }
