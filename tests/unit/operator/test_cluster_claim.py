"""A cluster name is claimed on the broker: the first install keeps it, a second one is reported, never merged."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from opscene import NOW, NS, SETTINGS, Scene, condition, reasons

from rabbitsync.amqp.claim import ClusterClaim
from rabbitsync.operator.brokers import reconcile_broker
from rabbitsync.operator.outcome import ObjectView, ReconcileOutcome
from rabbitsync.transport.errors import BrokerError

pytestmark = pytest.mark.unit

OURS = dataclasses.replace(SETTINGS, install_id="uid-east-1")


def _reconcile(scene: Scene, status: dict[str, object] | None = None, settings=OURS) -> ReconcileOutcome:  # type: ignore[no-untyped-def]
    return reconcile_broker(
        ObjectView(NS, "default", 1, status or {}), scene.kube, scene.brokers, now=NOW, settings=settings
    )


def test_first_install_claims_the_name_and_keeps_it() -> None:
    scene = Scene.ready()
    outcome = _reconcile(scene)
    assert condition(outcome, "ClusterNameClaimed") == ("True", "Claimed")
    assert condition(outcome, "Ready") == ("True", "ExchangeReady")
    assert scene.broker.claims == {"rabbitsync.cluster.east@/": ClusterClaim("east", "/", "uid-east-1")}
    # A restart of the same install (same kube-system UID) finds its own claim: nothing changes, no Event.
    assert _reconcile(scene, outcome.status).notes == []


def test_another_install_under_the_same_name_is_a_conflict_reported_not_merged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scene = Scene.ready()
    scene.broker.claims["rabbitsync.cluster.east@/"] = ClusterClaim("east", "/", "uid-other")
    with caplog.at_level(logging.ERROR):
        outcome = _reconcile(scene)
    assert condition(outcome, "ClusterNameClaimed") == ("False", "ClusterNameConflict")
    assert condition(outcome, "Ready") == ("False", "ClusterNameConflict")
    ready = next(c for c in outcome.status["conditions"] if c["type"] == "Ready")
    assert "uid-other" in ready["message"] and "uid-east-1" in ready["message"]
    assert "clear_global_parameter rabbitsync.cluster.east@/" in ready["message"]
    assert [n.type for n in outcome.notes if n.reason == "ClusterNameConflict"] == ["Warning", "Warning"]
    assert "claimed by another install (uid-other)" in caplog.text
    # Never taken over, and a resync repeats the conflict without a new Event.
    assert scene.broker.claims["rabbitsync.cluster.east@/"].install_id == "uid-other"
    assert "ClusterNameConflict" not in reasons(_reconcile(scene, outcome.status).notes)


def test_the_claim_is_per_vhost() -> None:
    scene = Scene.ready()
    scene.broker.claims["rabbitsync.cluster.east@other"] = ClusterClaim("east", "other", "uid-other")
    assert condition(_reconcile(scene), "ClusterNameClaimed") == ("True", "Claimed")


def test_unreachable_broker_says_nothing_about_the_claim() -> None:
    scene = Scene.ready()
    scene.broker.reachable = False
    outcome = _reconcile(scene)
    assert condition(outcome, "Ready") == ("False", "BrokerUnreachable")
    assert "ClusterNameClaimed" not in {c["type"] for c in outcome.status["conditions"]}


def test_without_an_install_id_nothing_is_claimed() -> None:
    scene = Scene.ready()
    _reconcile(scene, settings=SETTINGS)
    assert scene.broker.claims == {}


def test_a_malformed_claim_is_a_broker_error() -> None:
    with pytest.raises(BrokerError, match="malformed cluster claim"):
        ClusterClaim.from_value({"cluster": "east"})
