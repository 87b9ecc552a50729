"""The wrapper go.mod is derived from the upstream one, not hard-coded."""

from pathlib import Path

from harness.binaries import K8S_COMMANDS, NODE_COMMANDS, build_args, missing_commands, staging_modules, wrapper_go_mod

UPSTREAM = """module k8s.io/kubernetes

go 1.25.0

godebug default=go1.25

require (
\tk8s.io/api v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tgithub.com/other/thing => github.com/fork/thing v1.0.0
)
"""


def test_staging_modules_are_read_from_upstream():
    assert staging_modules(UPSTREAM) == ["k8s.io/api", "k8s.io/client-go"]


def test_wrapper_pins_staging_modules_to_matching_v0_release():
    mod = wrapper_go_mod(UPSTREAM, "v1.35.4")
    assert "require k8s.io/kubernetes v1.35.4" in mod
    assert "\tk8s.io/api => k8s.io/api v0.35.4" in mod
    assert "\tk8s.io/client-go => k8s.io/client-go v0.35.4" in mod
    assert "github.com/fork" not in mod
    assert "go 1.25\n" in mod and "godebug default=go1.25" in mod


def test_node_components_come_from_the_same_pinned_module(tmp_path: Path) -> None:
    assert NODE_COMMANDS == ("kubelet", "kube-scheduler", "kube-proxy")
    assert not set(NODE_COMMANDS) & set(K8S_COMMANDS)
    args = build_args("kubelet", "v1.35.4", tmp_path / "kubelet")
    assert args[-1] == "k8s.io/kubernetes/cmd/kubelet"
    assert args[args.index("-o") + 1] == str(tmp_path / "kubelet")
    assert "-X k8s.io/component-base/version.gitVersion=v1.35.4" in args[args.index("-ldflags") + 1]


def test_only_absent_commands_are_built(tmp_path: Path) -> None:
    (tmp_path / "kubelet").touch()
    assert missing_commands(tmp_path, NODE_COMMANDS) == ["kube-scheduler", "kube-proxy"]
