"""Restaurants arrive as events; menu items are created against them and published."""

import json
import uuid

from common.events import MENU_ITEM_CREATED, RESTAURANT_CREATED, RESTAURANT_DELETED
from django.test import TestCase
from restaurant_menu.models import MenuItem, Restaurant

from rabbitsync.django import Reject
from rabbitsync.django.testing import captured_events, deliver, make_event


def restaurant_event(event_type, restaurant_id, version=None):
    snapshot = {"id": restaurant_id, "name": "Pizza Place", "cuisine": "pizza", "email": "", "address": ""}
    return make_event(event_type, snapshot, subject=restaurant_id, version=version, service="restaurant")


class MenuTests(TestCase):
    def setUp(self):
        self.restaurant_id = str(uuid.uuid4())
        deliver(restaurant_event(RESTAURANT_CREATED, self.restaurant_id))

    def post_item(self, **fields):
        body = {"restaurant_id": self.restaurant_id, "name": "Margherita", "price_cents": 900, **fields}
        return self.client.post("/api/menu-items/", json.dumps(body), content_type="application/json")

    def test_a_restaurant_event_makes_the_local_copy(self):
        self.assertEqual(Restaurant.objects.get(pk=self.restaurant_id).name, "Pizza Place")

    def test_creating_a_menu_item_publishes_it(self):
        with captured_events() as published:
            response = self.post_item()
        self.assertEqual(response.status_code, 201, response.content)
        item = published.one(MENU_ITEM_CREATED)
        self.assertEqual(item.data["restaurant_id"], self.restaurant_id)
        self.assertEqual(item.data["price_cents"], 900)
        self.assertEqual(MenuItem.objects.get().name, "Margherita")

    def test_a_deleted_restaurant_takes_no_new_items(self):
        deliver(restaurant_event(RESTAURANT_DELETED, self.restaurant_id))
        with captured_events() as published:
            response = self.post_item()
        self.assertEqual(response.status_code, 400, response.content)
        published.assert_nothing_published()

    def test_a_restaurant_event_without_its_fields_is_rejected_not_applied(self):
        broken = make_event(RESTAURANT_CREATED, {"id": str(uuid.uuid4())}, service="restaurant")
        with self.assertRaises(Reject):
            deliver(broken)
        self.assertEqual(Restaurant.objects.count(), 1)
