"""The pure parts of the real-node harness: addresses, configuration, image cache keys, readiness."""

from pathlib import Path

import pytest

from harness import cgroups, forward, image, network, nodedeploy, nodes

# Explicit: `-m unit` deselects before tests/conftest.py marks tests by folder.
pytestmark = pytest.mark.unit


def test_link_addresses_are_consecutive_slash_30s_and_used_ones_are_skipped() -> None:
    assert network.link_addresses(1) == ("10.200.0.5", "10.200.0.6")
    out = "2: eth0    inet 192.0.2.2/24 brd ...\n7: rsx    inet 10.200.0.5/30 scope global rsx\n"
    assert network.used_link_indexes(out) == {1}


def test_pod_networks_per_cluster_and_the_bridge_gateway() -> None:
    net = network.NodeNetwork("ns", "rsx", "10.200.0.5", "10.200.0.6", network.POD_CIDRS["west"])
    config = network.cni_config(net, Path("/d/ipam"))
    bridge = config["plugins"][0]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.202.0.0/24", "gateway": "10.202.0.1"}]]
    assert bridge["ipam"]["dataDir"] == "/d/ipam" and bridge["ipMasq"] is True
    assert config["name"] == "ns", "results cached host-wide are named after the node, so teardown finds them"


def test_node_ids_fit_interface_names_and_differ_by_directory(tmp_path: Path) -> None:
    a, b = nodes.node_id(tmp_path / "a", "east"), nodes.node_id(tmp_path / "b", "east")
    assert a != b and a == nodes.node_id(tmp_path / "a", "east")
    netns, host_if = network.names(a)
    assert netns.startswith("rabbitsync-") and len(host_if) <= 15


def test_kubelet_accepts_cgroup_v1_and_never_collects_the_imported_images(tmp_path: Path) -> None:
    config = nodes.kubelet_config(tmp_path, "/rabbitsync/x", tmp_path / "c.sock", "10.200.0.6")
    assert config["failCgroupV1"] is False
    assert config["cgroupRoot"] == "/rabbitsync/x" and config["address"] == "10.200.0.6"
    assert config["imageGCHighThresholdPercent"] == 100
    assert config["podLogsDir"].startswith(str(tmp_path)) and config["resolvConf"].startswith(str(tmp_path))


def test_kube_proxy_leaves_host_wide_conntrack_settings_alone(tmp_path: Path) -> None:
    conntrack = nodes.proxy_config(tmp_path / "k", "east-node", "10.201.0.0/24")["conntrack"]
    assert conntrack["maxPerCore"] == 0 and conntrack["min"] == 0


def test_forward_rules_round_trip() -> None:
    rule = forward.parse_rule("127.0.0.1:8080=rabbitsync-eastab/10.0.0.12:80")
    assert rule.listen == forward.Endpoint(None, "127.0.0.1", 8080)
    assert rule.target == forward.Endpoint("rabbitsync-eastab", "10.0.0.12", 80)
    assert forward.parse_rule(str(rule)) == rule


def test_cgroup_v1_hierarchies_exclude_the_unified_mount() -> None:
    mounts = (
        "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n"
        "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"
        "proc /proc proc rw 0 0\n"
    )
    assert cgroups.hierarchies(mounts) == [Path("/sys/fs/cgroup/memory")]
    both = [Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup/unified")]
    assert cgroups.hierarchies(mounts, ("cgroup", "cgroup2")) == both


DOCKERFILE = """FROM ${PYTHON_IMAGE} AS build
COPY constraints.txt pyproject.toml ./
COPY operator ./operator
COPY --from=build /opt/venv /opt/venv
COPY services /app/services
"""


def test_the_image_key_covers_what_the_dockerfile_copies_and_nothing_generated(tmp_path: Path) -> None:
    assert image.copied_sources(DOCKERFILE) == ["constraints.txt", "pyproject.toml", "operator", "services"]
    assert image.ignored_globs("*\n!operator/\n**/__pycache__\n**/*.pyc\n") == ["__pycache__", "*.pyc"]
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / ".dockerignore").write_text("**/__pycache__\n")
    for name in ("constraints.txt", "pyproject.toml", "operator/a.py", "services/s/b.py", "other/c.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    key = image.app_key(tmp_path, "base")
    (tmp_path / "operator" / "__pycache__").mkdir()
    (tmp_path / "operator" / "__pycache__" / "a.pyc").write_text("x")
    (tmp_path / "other" / "c.py").write_text("changed")
    assert image.app_key(tmp_path, "base") == key
    (tmp_path / "operator" / "a.py").write_text("changed")
    assert image.app_key(tmp_path, "base") != key
    assert image.app_key(tmp_path, "other base") != image.app_key(tmp_path, "base")


def test_broker_urls_are_rewritten_to_the_node_link_and_put_in_the_secret() -> None:
    url = nodedeploy.via("amqp://u:p@127.0.0.1:5672/e2e-x?heartbeat=10", "10.200.0.5")
    assert url == "amqp://u:p@10.200.0.5:5672/e2e-x?heartbeat=10"
    docs = [
        {"kind": "ClusterSyncBroker", "metadata": {"name": "default"}, "spec": {"secretRef": {"name": "admin"}}},
        {"kind": "Secret", "metadata": {"name": "admin"}, "stringData": {"uri": "placeholder"}},
        {"kind": "Secret", "metadata": {"name": "other"}, "stringData": {"uri": "placeholder"}},
        {"kind": "Secret", "metadata": {"name": "foodapp-django"}, "stringData": {"secretKey": "replace-me"}},
    ]
    _, secret, other, django = nodedeploy.with_broker(docs, url, "http://10.200.0.5:15672")
    assert "stringData" not in secret and set(secret["data"]) == {"uri", "managementUri"}
    assert other["stringData"] == {"uri": "placeholder"}
    assert "stringData" not in django and len(django["data"]["secretKey"]) > 50


def _pod(service: str, ready: bool = True, sidecar: bool = True, deleting: bool = False) -> dict[str, object]:
    # The sidecar is a native one: an init container with restartPolicy Always, "started" rather than ready.
    inits = ["rabbitsync-sidecar"] if sidecar else []
    metadata: dict[str, object] = {"labels": {"app.kubernetes.io/name": service}}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": metadata,
        "spec": {
            "containers": [{"name": "app"}],
            "initContainers": [{"name": n, "restartPolicy": "Always"} for n in inits],
        },
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": "app", "ready": ready}],
            "initContainerStatuses": [{"name": n, "started": True} for n in inits],
        },
    }


def test_settled_means_one_ready_pod_per_service_with_the_sidecar() -> None:
    assert nodedeploy.settled([_pod("a"), _pod("b")], ("a", "b"))
    assert not nodedeploy.settled([_pod("a")], ("a", "b"))
    assert not nodedeploy.settled([_pod("a", sidecar=False)], ("a",))
    assert not nodedeploy.settled([_pod("a", ready=False)], ("a",))
    assert not nodedeploy.settled([_pod("a"), _pod("a")], ("a",))
    assert nodedeploy.settled([_pod("a"), _pod("a", sidecar=False, deleting=True)], ("a",))


def test_each_claim_gets_a_host_path_volume_bound_to_it():
    claim = {
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "order-data", "namespace": "foodapp"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    (volume,) = nodedeploy.persistent_volumes([claim, {"kind": "Service", "metadata": {"name": "x"}}], Path("/v"))
    assert volume["metadata"]["name"] == "foodapp-order-data"
    assert volume["spec"]["claimRef"] == {"namespace": "foodapp", "name": "order-data"}
    assert volume["spec"]["hostPath"]["path"] == "/v/foodapp/order-data"
    assert volume["spec"]["capacity"] == {"storage": "1Gi"}


def test_a_volume_directory_is_writable_by_the_pods_non_root_user(tmp_path: Path) -> None:
    # The kubelet applies no fsGroup to hostPath volumes: the directory itself must let uid 10001 write.
    path = tmp_path / "foodapp" / "order-data"
    nodedeploy.make_volume_directory(path)
    nodedeploy.make_volume_directory(path)
    assert path.stat().st_mode & 0o777 == 0o777


def test_the_image_cache_keeps_only_what_the_current_keys_name(tmp_path: Path) -> None:
    listing = (
        "aaa localhost/rabbitsync-rootfs:r1\n"
        "bbb localhost/rabbitsync-base:b1\n"
        "bbb localhost/rabbitsync-base:old\n"
        "ccc localhost/rabbitsync:a0\n"
        "ddd <none>:<none>\n"
        "ddd <none>:<none>\n"
    )
    kept = {"localhost/rabbitsync-rootfs:r1", "localhost/rabbitsync-base:b1"}
    # The base listed under a second name stays: removing its id would remove the kept name too.
    assert image.stale_images(listing, kept, {}) == ["ccc", "ddd"]
    assert image.stale_images("", kept, {}) == []
    # Kept too: the intermediate images of a kept image's build (their layers are its first layers),
    # not those of another build on the same base.
    listing += "eee localhost/rabbitsync-deps:current\nfff <none>:<none>\n"
    layers = {"bbb": ("l1",), "ddd": ("l1", "venv"), "eee": ("l1", "venv", "deps"), "fff": ("l1", "app")}
    kept.add("localhost/rabbitsync-deps:current")
    assert image.stale_images(listing, kept, layers) == ["ccc", "fff"]
    for name in ("rabbitsync-a1.tar", "rabbitsync-a0.tar", "pause-p1.tar", "base-b1.built", "base-b0.built", "lock"):
        (tmp_path / name).touch()
    stale = image.stale_files(tmp_path, {"rabbitsync-a1.tar", "pause-p1.tar", "base-b1.built"})
    assert [p.name for p in stale] == ["base-b0.built", "rabbitsync-a0.tar"]


def test_real_nodes_are_the_default_and_a_misspelt_choice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RABBITSYNC_NODES", raising=False)
    assert nodes.enabled()
    monkeypatch.setenv("RABBITSYNC_NODES", "podrunner")
    assert not nodes.enabled()
    monkeypatch.setenv("RABBITSYNC_NODES", "pod-runner")
    with pytest.raises(ValueError, match=r"use real \(the default\) or podrunner"):
        nodes.enabled()
