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
