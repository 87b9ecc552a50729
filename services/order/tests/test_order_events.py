"""Orders are priced from the copies that events built, and published as ORDER_CREATED."""

import json
import uuid

from common.events import MENU_ITEM_CREATED, MENU_ITEM_UPDATED, ORDER_CREATED, RESTAURANT_CREATED
from django.test import TestCase
from order.models import Order

from rabbitsync.django.testing import captured_events, deliver, make_event


class OrderTests(TestCase):
    def setUp(self):
        self.restaurant_id, self.item_id = str(uuid.uuid4()), str(uuid.uuid4())
        deliver(
            make_event(
                RESTAURANT_CREATED,
                {"id": self.restaurant_id, "name": "Pizza Place", "cuisine": "pizza"},
                subject=self.restaurant_id,
                service="restaurant",
            )
        )
        deliver(self.item_event(MENU_ITEM_CREATED, price_cents=900, version=10))

    def item_event(self, event_type, *, price_cents, version):
        item = {
            "id": self.item_id,
            "restaurant_id": self.restaurant_id,
            "name": "Margherita",
            "price_cents": price_cents,
            "available": True,
        }
        return make_event(event_type, item, subject=self.item_id, version=version, service="restaurant-menu")

    def order(self, quantity=2):
        body = {
            "restaurant_id": self.restaurant_id,
            "customer_name": "Ada",
            "items": [{"menu_item_id": self.item_id, "quantity": quantity}],
        }
        return self.client.post("/api/orders/", json.dumps(body), content_type="application/json")

    def test_an_order_is_priced_from_the_menu_copy_and_published(self):
        with captured_events() as published:
            response = self.order()
        self.assertEqual(response.status_code, 201, response.content)
        created = published.one(ORDER_CREATED)
        self.assertEqual(created.data["total_cents"], 1800)
        self.assertEqual(Order.objects.get().total_cents, 1800)

    def test_a_newer_price_applies_and_the_next_order_uses_it(self):
        deliver(self.item_event(MENU_ITEM_UPDATED, price_cents=1000, version=20))
        deliver(self.item_event(MENU_ITEM_UPDATED, price_cents=1, version=15))  # older: loses
        with captured_events() as published:
            self.order(quantity=1)
        self.assertEqual(published.one(ORDER_CREATED).data["total_cents"], 1000)
