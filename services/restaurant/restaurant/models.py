"""Restaurants, the entity this service owns (and replicates with its twin in the other cluster)."""

import uuid
from typing import Any

from django.db import models

from rabbitsync.django.models import VersionedModel


class Restaurant(VersionedModel):
    # Minted here (uuid4), carried in every event: the same id in every service and cluster.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    email = models.CharField(max_length=254, blank=True, default="")
    address = models.CharField(max_length=500, blank=True, default="")
    cuisine = models.CharField(max_length=100, blank=True, default="")
    deleted = models.BooleanField(default=False)
    """Tombstone: a deletion replicates as a write, so a late update cannot resurrect the row."""

    class Meta:
        db_table = "restaurant_restaurant"
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "email": self.email,
            "address": self.address,
            "cuisine": self.cuisine,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            **self.snapshot(),
            "deleted": self.deleted,
            "version": self.sync_version,
            "last_writer": self.sync_source,
        }
