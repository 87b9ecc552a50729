"""Effects the tests count: one ``Effect`` row per handler run, one ``Entity`` per LWW key."""

from django.db import models

from rabbitsync.django.models import VersionedModel


class Effect(models.Model):
    # Deliberately not unique: a second run of a handler for one event must show up as a second row.
    event_id = models.CharField(max_length=128, db_index=True)
    subject = models.CharField(max_length=255, blank=True, default="")
    applied_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "svc_effect"


class Entity(VersionedModel):
    key = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255)
    price = models.IntegerField(default=0)

    class Meta:
        db_table = "svc_entity"


class Item(VersionedModel):
    """An entity this test service owns and serves snapshots of; ``deleted`` is its tombstone."""

    key = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255)
    deleted = models.BooleanField(default=False)

    class Meta:
        db_table = "svc_item"


class ItemCopy(VersionedModel):
    """The replica of ``Item`` a subscriber keeps (the test's services share one database)."""

    key = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255)
    deleted = models.BooleanField(default=False)

    class Meta:
        db_table = "svc_item_copy"
