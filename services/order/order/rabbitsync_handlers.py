"""Restaurant and menu-item events (copies), and orders from this service in the *other* cluster
(our own are skipped by the library); all applied last-writer-wins."""

from common.events import MENU_ITEM_EVENTS, ORDER_EVENTS, RESTAURANT_EVENTS
from common.replication import apply_received

from order.models import MenuItem, Order, Restaurant
from rabbitsync.django import handler


@handler(*RESTAURANT_EVENTS)
def restaurant_changed(event):
    apply_received(Restaurant, event, Restaurant.REPLICATED_FIELDS)


@handler(*MENU_ITEM_EVENTS)
def menu_item_changed(event):
    apply_received(MenuItem, event, ("restaurant_id", "name", "price_cents", "available"))


@handler(*ORDER_EVENTS)
def order_changed(event):
    apply_received(Order, event, ("restaurant_id", "customer_name", "items", "total_cents", "status", "placed_at"))
