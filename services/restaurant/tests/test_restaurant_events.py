"""What the restaurant API publishes, and how it applies the other cluster's restaurant events."""

import json
import uuid

from common.events import RESTAURANT_CREATED, RESTAURANT_DELETED, RESTAURANT_UPDATED
from django.test import TestCase
from restaurant.models import Restaurant

from rabbitsync.django import get_settings
from rabbitsync.django.inbox import Outcome
from rabbitsync.django.testing import captured_events, deliver, make_event


class PublishingTests(TestCase):
    def post(self, body):
        return self.client.post("/api/restaurants/", json.dumps(body), content_type="application/json")

    def test_creating_a_restaurant_publishes_its_snapshot(self):
        with captured_events() as published:
            response = self.post({"name": "Pizza Place", "cuisine": "pizza"})
        self.assertEqual(response.status_code, 201)
        created = published.one(RESTAURANT_CREATED, subject=response.json()["id"])
        self.assertEqual(created.data["name"], "Pizza Place")
        self.assertEqual(created.source, get_settings().origin.source)
        self.assertEqual(created.version, Restaurant.objects.get().sync_version)

    def test_a_refused_request_publishes_nothing(self):
        with captured_events() as published:
            response = self.post({"cuisine": "no name"})
        self.assertEqual(response.status_code, 400)
        published.assert_nothing_published()

    def test_update_and_delete_publish_in_order(self):
        restaurant_id = self.post({"name": "Old"}).json()["id"]
        with captured_events() as published:
            self.client.patch(f"/api/restaurants/{restaurant_id}/", '{"name": "New"}', content_type="application/json")
            self.client.delete(f"/api/restaurants/{restaurant_id}/")
        self.assertEqual(published.types(), [RESTAURANT_UPDATED, RESTAURANT_DELETED])
        updated, deleted = published
        self.assertLess(updated.version, deleted.version)


class ReceivingTests(TestCase):
    def snapshot(self, restaurant_id, name):
        return {"id": restaurant_id, "name": name, "email": "", "address": "", "cuisine": "thai"}

    def test_the_other_clusters_restaurant_is_applied_once(self):
        restaurant_id = str(uuid.uuid4())
        event = make_event(
            RESTAURANT_CREATED, self.snapshot(restaurant_id, "Thai"), subject=restaurant_id, service="restaurant"
        )
        self.assertEqual(deliver(event), Outcome.APPLIED)
        self.assertEqual(deliver(event), Outcome.DUPLICATE)
        self.assertEqual(Restaurant.objects.get(pk=restaurant_id).name, "Thai")

    def test_an_older_write_loses(self):
        restaurant_id = str(uuid.uuid4())
        newer = make_event(RESTAURANT_UPDATED, self.snapshot(restaurant_id, "Newer"), subject=restaurant_id, version=20)
        older = make_event(RESTAURANT_UPDATED, self.snapshot(restaurant_id, "Older"), subject=restaurant_id, version=10)
        deliver(newer)
        deliver(older)
        self.assertEqual(Restaurant.objects.get(pk=restaurant_id).name, "Newer")

    def test_its_own_events_are_skipped(self):
        restaurant_id = self.client.post(
            "/api/restaurants/", '{"name": "Mine"}', content_type="application/json"
        ).json()["id"]
        own = make_event(
            RESTAURANT_UPDATED,
            self.snapshot(restaurant_id, "Echo"),
            subject=restaurant_id,
            service=get_settings().service,
            cluster=get_settings().cluster,
        )
        self.assertEqual(deliver(own), Outcome.OWN)
        self.assertEqual(Restaurant.objects.get(pk=restaurant_id).name, "Mine")
