"""Build the Kubernetes binaries (etcd, the control plane, kubectl and the node components) from Go modules.

There is no Docker and no binary download on our machines, so the harness compiles the real
components from the Go module proxy with the ordinary ``go`` command. ``replace`` directives only
work in the main module, so we generate a tiny wrapper module that requires ``k8s.io/kubernetes``
and points each of its staging modules at the matching ``v0.x`` release. The list of staging
modules is read from the upstream go.mod instead of being hard-coded, so a version bump is one
constant. etcd lives in its own wrapper module so its dependency versions never bend the
API server's.

Binaries land in ``~/.cache/rabbitsync/k8s-<version>/bin`` (or ``$RABBITSYNC_CACHE_DIR``) and
are built once per version: a binary that exists in the cache is never rebuilt. ``helm`` (for the
chart's tests) is built the same way from ``helm.sh/helm/v3/cmd/helm`` in a wrapper module of its own,
into ``helm-<version>/bin``, only when a test asks for it. The node components
(kubelet, kube-scheduler, kube-proxy) are built only when real nodes are asked for
(``ensure_node_binaries``), so the pod-runner suites never pay for them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

KUBERNETES_VERSION = "v1.35.4"
ETCD_VERSION = "v3.6.16"
HELM_VERSION = "v3.22.0"

# kubectl too, so the client matches the server version (a distro kubectl may be several minors older).
K8S_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kubectl")
NODE_COMMANDS = ("kubelet", "kube-scheduler", "kube-proxy")
_STAGING_RE = re.compile(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", re.MULTILINE)
_GO_DIRECTIVE_RE = re.compile(r"^go (\d+\.\d+)", re.MULTILINE)


@dataclass(frozen=True)
class Binaries:
    """Paths of the built control-plane executables."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kubectl: Path
    kubernetes_version: str


@dataclass(frozen=True)
class NodeBinaries:
    """Paths of the built node executables (and the scheduler, which only real nodes need)."""

    kubelet: Path
    kube_scheduler: Path
    kube_proxy: Path


def cache_root() -> Path:
    override = os.environ.get("RABBITSYNC_CACHE_DIR")
    if override:
        return Path(override)
    return Path.home() / ".cache" / "rabbitsync"


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # The machine's own Go builds everything; never let go.mod pull another toolchain.
    env.update(GOTOOLCHAIN="local", CGO_ENABLED="0", GOFLAGS="-mod=mod")
    return env


def _go(args: list[str], cwd: Path) -> str:
    if shutil.which("go") is None:
        raise RuntimeError("the `go` command is required to build the control plane; install Go >= 1.25")
    log.info("go %s (in %s)", " ".join(args), cwd)
    proc = subprocess.run(["go", *args], cwd=cwd, env=_go_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`go {' '.join(args)}` failed in {cwd}:\n{proc.stderr[-4000:]}")
    return proc.stdout


def staging_modules(upstream_go_mod: str) -> list[str]:
    """The k8s.io modules that k8s.io/kubernetes replaces with its own staging tree."""
    return sorted(set(_STAGING_RE.findall(upstream_go_mod)))


def wrapper_go_mod(upstream_go_mod: str, version: str) -> str:
    """go.mod for a main module that can build k8s.io/kubernetes commands at ``version``."""
    match = _GO_DIRECTIVE_RE.search(upstream_go_mod)
    if not match:
        raise ValueError("upstream go.mod has no go directive")
    go_minor = match.group(1)
    staging_version = "v0." + version.removeprefix("v").split(".", 1)[1]
    replaces = "\n".join(f"\t{mod} => {mod} {staging_version}" for mod in staging_modules(upstream_go_mod))
    return (
        "module rabbitsync.local/controlplane\n\n"
        f"go {go_minor}\n\n"
        f"godebug default=go{go_minor}\n\n"
        f"require k8s.io/kubernetes {version}\n\n"
        f"replace (\n{replaces}\n)\n"
    )


def _tools_go(packages: list[str]) -> str:
    imports = "\n".join(f'\t_ "{p}"' for p in packages)
    return f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n"


def _build_kubernetes(root: Path, version: str, commands: list[str]) -> None:
    src = root / "src-kubernetes"
    src.mkdir(parents=True, exist_ok=True)
    info = json.loads(_go(["mod", "download", "-json", f"k8s.io/kubernetes@{version}"], cwd=src))
    upstream = Path(info["GoMod"]).read_text()
    (src / "go.mod").write_text(wrapper_go_mod(upstream, version))
    # Every command is listed, so the module graph (and go.sum) is the same whichever set is built first.
    (src / "tools.go").write_text(_tools_go([f"k8s.io/kubernetes/cmd/{cmd}" for cmd in K8S_COMMANDS + NODE_COMMANDS]))
    _go(["mod", "tidy", "-e"], cwd=src)
    for cmd in commands:
        _go(build_args(cmd, version, root / "bin" / cmd), cwd=src)


def build_args(command: str, version: str, output: Path) -> list[str]:
    """``go`` arguments building ``k8s.io/kubernetes/cmd/<command>`` stamped with ``version``."""
    ldflags = (
        f"-s -w -X k8s.io/component-base/version.gitVersion={version}"
        f" -X k8s.io/component-base/version.gitMajor={version.removeprefix('v').split('.')[0]}"
        f" -X k8s.io/component-base/version.gitMinor={version.split('.')[1]}"
    )
    return ["build", "-trimpath", "-ldflags", ldflags, "-o", str(output), f"k8s.io/kubernetes/cmd/{command}"]


def _root(kubernetes_version: str, etcd_version: str) -> Path:
    return cache_root() / f"k8s-{kubernetes_version}-etcd-{etcd_version}"


def missing_commands(bin_dir: Path, commands: tuple[str, ...]) -> list[str]:
    return [cmd for cmd in commands if not (bin_dir / cmd).exists()]


def _build_etcd(root: Path, version: str) -> None:
    src = root / "src-etcd"
    src.mkdir(parents=True, exist_ok=True)
    (src / "go.mod").write_text("module rabbitsync.local/etcd\n\ngo 1.24\n")
    (src / "tools.go").write_text(_tools_go(["go.etcd.io/etcd/server/v3"]))
    _go(["get", f"go.etcd.io/etcd/server/v3@{version}"], cwd=src)
    _go(["mod", "tidy", "-e"], cwd=src)
    _go(
        ["build", "-trimpath", "-ldflags", "-s -w", "-o", str(root / "bin" / "etcd"), "go.etcd.io/etcd/server/v3"],
        cwd=src,
    )


def ensure_binaries(kubernetes_version: str = KUBERNETES_VERSION, etcd_version: str = ETCD_VERSION) -> Binaries:
    """Return the control-plane binaries, building them on first use only."""
    root = _root(kubernetes_version, etcd_version)
    bin_dir = root / "bin"
    missing = missing_commands(bin_dir, K8S_COMMANDS)
    if missing or not (bin_dir / "etcd").exists():
        bin_dir.mkdir(parents=True, exist_ok=True)
        log.info("building control plane %s / etcd %s into %s (first use only)", kubernetes_version, etcd_version, root)
        if not (bin_dir / "etcd").exists():
            _build_etcd(root, etcd_version)
        if missing:
            _build_kubernetes(root, kubernetes_version, missing)
    return Binaries(
        etcd=bin_dir / "etcd",
        kube_apiserver=bin_dir / "kube-apiserver",
        kube_controller_manager=bin_dir / "kube-controller-manager",
        kubectl=bin_dir / "kubectl",
        kubernetes_version=kubernetes_version,
    )


def helm_build_args(version: str, client_go_version: str, output: Path) -> list[str]:
    """``go`` arguments building ``helm`` as its own Makefile does: version stamped, and the Kubernetes
    version its linter and ``helm template`` assume derived from the client-go it was built with."""
    major, minor = client_go_version.removeprefix("v").split(".")[:2]
    kube_major, kube_minor = str(int(major) + 1), minor
    flags = [f"-X helm.sh/helm/v3/internal/version.version={version}"]
    for package in ("pkg/lint/rules", "pkg/chartutil"):
        flags += [
            f"-X helm.sh/helm/v3/{package}.k8sVersionMajor={kube_major}",
            f"-X helm.sh/helm/v3/{package}.k8sVersionMinor={kube_minor}",
        ]
    ldflags = " ".join(["-s -w", *flags])
    return ["build", "-trimpath", "-ldflags", ldflags, "-o", str(output), "helm.sh/helm/v3/cmd/helm"]


def ensure_helm(version: str = HELM_VERSION) -> Path:
    """Return ``helm`` at ``version``, built from the Go module proxy on first use only."""
    root = cache_root() / f"helm-{version}"
    helm = root / "bin" / "helm"
    if helm.exists():
        return helm
    log.info("building helm %s into %s (first use only)", version, root)
    src = root / "src"
    src.mkdir(parents=True, exist_ok=True)
    helm.parent.mkdir(parents=True, exist_ok=True)
    (src / "go.mod").write_text("module rabbitsync.local/helm\n\ngo 1.26\n")
    (src / "tools.go").write_text(_tools_go(["helm.sh/helm/v3/cmd/helm"]))
    _go(["get", f"helm.sh/helm/v3@{version}"], cwd=src)
    _go(["mod", "tidy", "-e"], cwd=src)
    client_go = _go(["list", "-m", "-f", "{{.Version}}", "k8s.io/client-go"], cwd=src).strip()
    _go(helm_build_args(version, client_go, helm), cwd=src)
    return helm


def ensure_node_binaries(
    kubernetes_version: str = KUBERNETES_VERSION, etcd_version: str = ETCD_VERSION
) -> NodeBinaries:
    """Return kubelet, kube-scheduler and kube-proxy, built beside the control plane on first use only."""
    ensure_binaries(kubernetes_version, etcd_version)
    root = _root(kubernetes_version, etcd_version)
    bin_dir = root / "bin"
    missing = missing_commands(bin_dir, NODE_COMMANDS)
    if missing:
        log.info("building node components %s into %s (first use only)", ", ".join(missing), bin_dir)
        _build_kubernetes(root, kubernetes_version, missing)
    return NodeBinaries(
        kubelet=bin_dir / "kubelet", kube_scheduler=bin_dir / "kube-scheduler", kube_proxy=bin_dir / "kube-proxy"
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    print(ensure_binaries())
