"""Restaurant events (from the restaurant service) and menu-item events (from this service in the
*other* cluster; our own are skipped by the library), each applied last-writer-wins."""

from common.events import MENU_ITEM_EVENTS, RESTAURANT_EVENTS
from common.replication import apply_received

from rabbitsync.django import handler
from restaurant_menu.models import MenuItem, Restaurant


@handler(*RESTAURANT_EVENTS)
def restaurant_changed(event):
    apply_received(Restaurant, event, Restaurant.REPLICATED_FIELDS)


@handler(*MENU_ITEM_EVENTS)
def menu_item_changed(event):
    apply_received(MenuItem, event, ("restaurant_id", "name", "description", "price_cents", "available"))
