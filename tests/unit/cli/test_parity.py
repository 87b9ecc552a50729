"""Topology: one fixture per parity problem, and the text drawings."""

from __future__ import annotations

from clifakes import obj

from rabbitsync.cli import render
from rabbitsync.cli.graph import build
from rabbitsync.cli.resources import PUBLICATION, SUBSCRIPTION, parse

NS = "shop"


def sub(cluster: str, name: str, events: list[str], **status: object):
    return parse(SUBSCRIPTION, cluster, obj(NS, name, name, events, **status))


def pub(cluster: str, name: str, events: list[str]):
    return parse(PUBLICATION, cluster, obj(NS, name, name, events))


def kinds(topology) -> set[tuple[str, str]]:
    return {(p.kind, p.subject) for p in topology.problems}


def test_matching_clusters_have_no_problem():
    resources = [pub(c, "orders", ["placed"]) for c in ("east", "west")] + [
        sub(c, "billing", ["placed"]) for c in ("east", "west")
    ]
    assert build(resources, ["east", "west"], publications_known=True, queues=[]).problems == ()


def test_a_service_subscribed_in_one_cluster_only():
    resources = [
        pub("east", "orders", ["placed"]),
        pub("west", "orders", ["placed"]),
        sub("east", "billing", ["placed"]),
    ]
    topology = build(resources, ["east", "west"], publications_known=True)
    assert kinds(topology) == {("one-cluster", "billing")}
    assert "not in west" in topology.problems[0].detail


def test_a_type_consumed_but_published_by_nobody():
    topology = build([sub("east", "billing", ["refunded"])], ["east"], publications_known=True)
    assert kinds(topology) == {("not-published", "refunded")}


def test_a_type_published_but_consumed_by_nobody():
    topology = build([pub("east", "orders", ["placed"])], ["east"], publications_known=True)
    assert kinds(topology) == {("not-consumed", "placed")}


def test_without_the_publication_crd_one_sided_types_are_not_judged():
    topology = build([sub("east", "billing", ["refunded"])], ["east"], publications_known=False)
    assert topology.problems == ()


def test_a_queue_no_subscription_owns():
    owned = sub("east", "billing", ["placed"], queue=f"rabbitsync.prod-east.{NS}.billing")
    queues = [
        f"rabbitsync.prod-east.{NS}.billing",
        f"rabbitsync.prod-east.{NS}.billing.dlq",
        f"rabbitsync.prod-east.{NS}.billing.retry.1000ms",  # also one an older retry policy left
        f"rabbitsync.prod-east.{NS}.billing.@backfill-status",  # its backfill's status queue
        f"rabbitsync.prod-east.{NS}.restaurant.@backfill-requests",  # a service's, not a subscription's
        "rabbitsync.prod-east.@delay.quorum.1000ms",  # the cluster's subscriptions share it
        "rabbitsync.prod-east.@retries.orphaned",  # so they do this one
        f"rabbitsync.prod-east.{NS}.ghost",
        f"rabbitsync.prod-east.{NS}.billing-v2",
        "rabbitsync.elsewhere.shop.x",  # another cluster's: not ours to judge
        "unrelated",
    ]
    topology = build([owned], ["east"], publications_known=False, queues=queues)
    assert topology.unowned_queues == (f"rabbitsync.prod-east.{NS}.billing-v2", f"rabbitsync.prod-east.{NS}.ghost")
    assert {p.namespace for p in topology.problems} == {NS}


def test_drawings_show_every_edge_and_flag_problems():
    topology = build(
        [pub("east", "orders", ["placed"]), sub("east", "billing", ["placed", "refunded"])],
        ["east"],
        publications_known=True,
        queues=["rabbitsync.east.shop.ghost"],
    )
    dot = render.dot(topology)
    assert dot.startswith("digraph rabbitsync {") and 'subgraph "cluster_east"' in dot
    assert dot.count("->") == 3 and "shop: refunded" in dot and "rabbitsync.east.shop.ghost" in dot
    assert "color=red" in dot
    mermaid = render.mermaid(topology)
    assert mermaid.startswith("flowchart LR") and mermaid.count("-->") == 3
    assert "class" in mermaid and "rabbitsync.east.shop.ghost" in mermaid
