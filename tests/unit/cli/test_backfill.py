"""``rabbitsync backfill``: which publisher answers which types, and what lands in its request queue."""

from __future__ import annotations

import dataclasses
import importlib
import io

import pytest
from clifakes import FakeCluster, obj

from rabbitsync.cli import backfill
from rabbitsync.cli.failures import NothingMatched
from rabbitsync.cli.resources import PUBLICATION, SUBSCRIPTION, parse
from rabbitsync.events.backfill import decode_request
from rabbitsync.topology import naming

main = importlib.import_module("rabbitsync.cli.main")
TYPES = ("R_CREATED", "R_DELETED", "M_UPDATED")


def _sub(cluster: str = "east", service: str = "delivery") -> backfill.Resource:
    return parse(SUBSCRIPTION, cluster, obj("shop", "copy", service, TYPES, queue=f"rabbitsync.{cluster}.shop.copy"))


def _pub(cluster: str, name: str, events: tuple[str, ...], service: str | None = None) -> backfill.Resource:
    user = f"rabbitsync.{cluster}.shop.{service or name}"
    return parse(PUBLICATION, cluster, obj("shop", name, service or name, events, user=user))


def test_the_own_clusters_publisher_answers_and_the_other_cluster_only_for_what_it_lacks() -> None:
    chosen = backfill.choose(
        _sub(),
        [
            _pub("west", "restaurant", TYPES[:2]),
            _pub("east", "restaurant", TYPES[:2]),
            _pub("west", "menu", TYPES[2:]),
            dataclasses.replace(_pub("east", "elsewhere", TYPES[2:]), namespace="other"),
        ],
    )
    assert [(p.cluster, p.name, types) for p, types in chosen] == [
        ("east", "restaurant", TYPES[:2]),
        ("west", "menu", TYPES[2:]),
    ]


def test_a_subscriber_never_asks_itself_in_its_own_cluster_but_its_twin_in_the_other() -> None:
    [(publisher, types)] = backfill.choose(
        _sub(service="restaurant"), [_pub("east", "restaurant", TYPES), _pub("west", "restaurant", TYPES)]
    )
    assert (publisher.cluster, types) == ("west", TYPES)


def test_types_nobody_else_publishes_are_an_error_naming_them() -> None:
    with pytest.raises(NothingMatched, match="M_UPDATED"):
        backfill.choose(_sub(service="restaurant"), [_pub("east", "restaurant", TYPES), _pub("west", "r", TYPES[:2])])


def test_the_request_queue_is_the_publishers_user_with_a_suffix() -> None:
    queue = backfill.request_queue(_pub("west", "restaurant", TYPES))
    assert queue == naming.backfill_request_queue("west", "shop", "restaurant")
    with pytest.raises(NothingMatched, match=r"status\.user"):
        backfill.request_queue(parse(PUBLICATION, "east", obj("shop", "p", "p", TYPES)))


def test_the_command_sends_one_request_per_publisher_to_its_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = []
    monkeypatch.setattr(backfill, "send", lambda endpoint, queue, request: sent.append((queue, request)))
    east = FakeCluster("east", [obj("shop", "copy", "delivery", TYPES, queue="rabbitsync.east.shop.copy")], [])
    west = FakeCluster(
        "west", [], [obj("shop", "restaurant", "restaurant", TYPES, user="rabbitsync.west.shop.restaurant")]
    )
    monkeypatch.setattr(main.kube, "connect", lambda _targets: [east, west])
    monkeypatch.setattr(main.kube, "targets", lambda *_args: [])
    out = io.StringIO()
    monkeypatch.setattr(main.sys, "stdout", out)
    assert main.main(["backfill", "shop/copy", "-o", "json"]) == 0
    [(queue, request)] = sent
    assert queue == "rabbitsync.west.shop.restaurant.@backfill-requests"
    assert (request.queue, request.types, request.subscription) == ("rabbitsync.east.shop.copy", TYPES, "shop/copy")
    assert decode_request(backfill.encode(request)) == request
    assert request.id in out.getvalue()
