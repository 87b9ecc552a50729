"""The injected sidecar is modelled on the app container and owns only what the operator sets."""

from __future__ import annotations

import json

import pytest

from rabbitsync.operator import sidecar_spec
from rabbitsync.topology import sidecar_contract


def _deployment(*containers: dict, annotations: dict | None = None) -> dict:
    return {
        "metadata": {"name": "menu", "namespace": "food", "annotations": annotations or {}},
        "spec": {"template": {"spec": {"containers": list(containers)}}},
    }


APP = {
    "name": "app",
    "image": "rabbitsync:0.1.0",
    "workingDir": "/app/services/restaurant_menu",
    "command": ["python", "manage.py", "runserver"],
    "env": [
        {"name": "SQLITE_PATH", "value": "/data/db.sqlite3"},
        {"name": "RABBITSYNC_SERVICE", "value": "stale"},
    ],
    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
}


def _consumers(*names: str) -> list[sidecar_contract.ConsumerSpec]:
    return [
        sidecar_contract.build(
            cluster="east",
            namespace="food",
            subscription=n,
            events=["A"],
            max_attempts=3,
            initial_backoff_ms=100,
            max_backoff_ms=1000,
            dead_letter=True,
            prefetch=5,
        )
        for n in names
    ]


def _container(consumers: list[sidecar_contract.ConsumerSpec]) -> dict:
    return sidecar_spec.sidecar_container(
        APP, consumers, cluster="east", service="menu", exchange="rabbitsync.events", secret="broker"
    )


def test_copies_image_workdir_env_and_mounts_and_runs_the_sidecar_command():
    c = _container(_consumers("a"))
    assert c["name"] == "rabbitsync-sidecar"
    assert c["image"] == APP["image"]
    assert c["workingDir"] == APP["workingDir"]
    assert c["volumeMounts"] == APP["volumeMounts"]
    assert c["command"] == ["python", "manage.py", "rabbitsync_sidecar"]
    env = {e["name"]: e for e in c["env"]}
    assert env["SQLITE_PATH"]["value"] == "/data/db.sqlite3"
    assert env["RABBITSYNC_SERVICE"]["value"] == "menu", "operator-owned variables replace the app's"
    assert [e["name"] for e in c["env"]].count("RABBITSYNC_SERVICE") == 1
    assert env["RABBITSYNC_AMQP_URL"]["valueFrom"] == {"secretKeyRef": {"name": "broker", "key": "uri"}}
    # A native sidecar: never decides the pod's readiness (issue 10 point 1), but is restarted when wedged.
    assert c["restartPolicy"] == "Always"
    assert "readinessProbe" not in c and "startupProbe" not in c
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_subscription_order_never_changes_the_template():
    forward = _container(_consumers("a", "b"))
    backward = _container(_consumers("b", "a"))
    assert forward == backward
    subs = json.loads({e["name"]: e for e in forward["env"]}["RABBITSYNC_SUBSCRIPTIONS"]["value"])
    assert [s["subscription"] for s in subs] == ["a", "b"]
    parsed = sidecar_contract.SidecarConfig(subscriptions=json.dumps(subs)).subscriptions
    assert parsed == tuple(sorted(_consumers("a", "b"), key=lambda s: s.subscription))


def test_app_container_is_the_annotated_one_or_the_first_that_is_not_ours():
    ours = {"name": "rabbitsync-sidecar", "image": "x"}
    other = {"name": "proxy", "image": "envoy"}
    assert sidecar_spec.app_container(_deployment(ours, APP, other))["name"] == "app"
    annotated = _deployment(APP, other, annotations={sidecar_spec.APP_CONTAINER_ANNOTATION: "proxy"})
    assert sidecar_spec.app_container(annotated)["name"] == "proxy"
    with pytest.raises(sidecar_spec.NoAppContainer, match="'missing'"):
        sidecar_spec.app_container(_deployment(APP, annotations={sidecar_spec.APP_CONTAINER_ANNOTATION: "missing"}))


def test_apply_body_owns_only_the_sidecar_and_empty_body_removes_it():
    body = sidecar_spec.apply_body("menu", "food", _container(_consumers("a")))
    # An init container (native sidecar); no "containers" key, so an old regular sidecar we owned goes away.
    assert [c["name"] for c in body["spec"]["template"]["spec"]["initContainers"]] == ["rabbitsync-sidecar"]
    assert "containers" not in body["spec"]["template"]["spec"]
    assert "replicas" not in body["spec"] and "selector" not in body["spec"]
    assert "spec" not in sidecar_spec.apply_body("menu", "food", None)


def _live(container: dict, credentials: str | None = "sum-1", *, legacy: bool = False) -> dict:
    """A Deployment as the API server returns it after our apply: defaults added to our container."""
    served = json.loads(json.dumps(container))
    served |= {"terminationMessagePath": "/dev/termination-log", "imagePullPolicy": "IfNotPresent"}
    for env in served["env"]:
        if "fieldRef" in env.get("valueFrom", {}):
            env["valueFrom"]["fieldRef"].setdefault("apiVersion", "v1")
    deployment = _deployment(APP, *([{"name": sidecar_spec.CONTAINER_NAME, "image": "old"}] if legacy else []))
    deployment["spec"]["template"]["spec"]["initContainers"] = [served]
    if credentials is not None:
        deployment["spec"]["template"]["metadata"] = {"annotations": {sidecar_spec.CREDENTIALS_ANNOTATION: credentials}}
    return deployment


def test_a_sidecar_as_served_is_in_place_and_any_difference_is_applied_again():
    ours = _container(_consumers("a"))
    assert sidecar_spec.in_place(_live(ours), ours, "sum-1"), "the API server's defaults are not a difference"
    assert not sidecar_spec.in_place(_live(ours), _container(_consumers("a", "b")), "sum-1"), "another queue"
    assert not sidecar_spec.in_place(_live(ours), ours, "sum-2"), "rotated credentials roll the pods"
    assert not sidecar_spec.in_place(_live(ours, None), ours, "sum-1")
    assert not sidecar_spec.in_place(_live(ours), ours, None), "a checksum we no longer set is removed"
    assert not sidecar_spec.in_place(_live(ours, legacy=True), ours, "sum-1"), "an older release's container goes"
    edited = _live(ours)
    edited["spec"]["template"]["spec"]["initContainers"][0]["env"][0]["value"] = "edited"
    assert not sidecar_spec.in_place(edited, ours, "sum-1"), "an edit out of band is applied over"
    extra = _live(ours)
    extra["spec"]["template"]["spec"]["initContainers"][0]["env"].append({"name": "MORE", "value": "1"})
    assert not sidecar_spec.in_place(extra, ours, "sum-1")
    assert not sidecar_spec.in_place(_deployment(APP), ours, "sum-1"), "not injected yet"
