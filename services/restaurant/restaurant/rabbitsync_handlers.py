"""Restaurant events from this service in the *other* cluster (our own are skipped by the library).

Both clusters accept writes; applying each other's snapshots with last-writer-wins makes them
converge on the same row, also when both change one restaurant at the same time.
"""

from common.events import RESTAURANT_EVENTS
from common.replication import apply_received

from rabbitsync.django import handler
from restaurant.models import Restaurant

FIELDS = ("name", "email", "address", "cuisine")


@handler(*RESTAURANT_EVENTS)
def restaurant_changed(event):
    apply_received(Restaurant, event, FIELDS)
