"""Restaurant events from this service in the *other* cluster (our own are skipped by the library),
and the snapshot source that answers backfill requests for restaurants.

Both clusters accept writes; applying each other's snapshots with last-writer-wins makes them
converge on the same row, also when both change one restaurant at the same time.
"""

from common.events import RESTAURANT_DELETED, RESTAURANT_EVENTS, RESTAURANT_UPDATED
from common.replication import apply_received

from rabbitsync.django import SnapshotEvent, handler, snapshot_source
from restaurant.models import Restaurant

FIELDS = ("name", "email", "address", "cuisine")


@handler(*RESTAURANT_EVENTS)
def restaurant_changed(event):
    apply_received(Restaurant, event, FIELDS)


@snapshot_source(Restaurant.objects.all(), types=RESTAURANT_EVENTS)
def restaurant_snapshot(row):
    """A backfill sends each restaurant as its last write would: deleted ones as tombstones."""
    kind = RESTAURANT_DELETED if row.deleted else RESTAURANT_UPDATED
    return SnapshotEvent(kind, row.snapshot(), subject=str(row.id), version=row.sync_version)
