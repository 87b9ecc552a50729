"""One containerd per node, inside the node's network namespace, with nothing shared with another.

Root, state, socket, runc state and CNI configuration are all under the node's directory; the pod
sandboxes' network namespaces are mounted under its state (``netns_mounts_under_state_dir``), not in
the host's /run/netns. containerd joins the node's network namespace with ``nsenter`` and keeps the
host's mount namespace (``ip netns exec`` would remount /sys, and runc finds no cgroup mounts
there): its mounts (root filesystems, sandbox namespaces) are all under the node's directory, which
the node's teardown unmounts.
"""

from __future__ import annotations

import json
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness import network, processes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Paths:
    directory: Path

    @property
    def socket(self) -> Path:
        return self.directory / "containerd.sock"

    @property
    def config(self) -> Path:
        return self.directory / "config.toml"

    @property
    def cni_conf_dir(self) -> Path:
        return self.directory / "cni" / "net.d"


def config_toml(paths: Paths, sandbox_image: str) -> str:
    d = paths.directory
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{d / "root"}"
state = "{d / "state"}"
# Snapshotters this node never uses, and the plugin that would write to /opt.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.opt"]

[grpc]
  address = "{paths.socket}"

[{cri}]
  sandbox_image = "{sandbox_image}"
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # Root here lacks CAP_SYS_RESOURCE, so no process may lower its OOM score (the sandbox's -998 is
  # refused and runc fails): scores never go below containerd's own.
  restrict_oom_score_adj = true

[{cri}.cni]
  bin_dir = "{network.CNI_BIN_DIR}"
  conf_dir = "{paths.cni_conf_dir}"
  max_conf_num = 1

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "{d / "runc"}"
"""


def start(paths: Paths, net: network.NodeNetwork, sandbox_image: str, log_file: Path) -> processes.ProcessRecord:
    paths.directory.mkdir(parents=True, exist_ok=True)
    paths.cni_conf_dir.mkdir(parents=True, exist_ok=True)
    paths.config.write_text(config_toml(paths, sandbox_image))
    conflist = network.cni_config(net, paths.directory / "cni" / "ipam")
    (paths.cni_conf_dir / "10-rabbitsync.conflist").write_text(json.dumps(conflist, indent=2))
    record = processes.spawn(
        "containerd",
        ["nsenter", f"--net=/run/netns/{net.netns}", "--", "containerd", "--config", str(paths.config)],
        log_file,
    )
    processes.wait_until(lambda: _answers(paths), 60, "containerd", record.log)
    return record


def ctr(paths: Paths, *args: str) -> str:
    proc = subprocess.run(
        ["ctr", "--address", str(paths.socket), "--namespace", "k8s.io", *args], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"`ctr {' '.join(args)}` failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def _answers(paths: Paths) -> bool:
    if not paths.socket.exists():
        return False
    try:
        ctr(paths, "version")
    except RuntimeError:
        return False
    return True


def import_image(paths: Paths, archive: Path, name: str) -> None:
    """Load an OCI archive into the Kubernetes namespace of this containerd, named ``name``."""
    ctr(paths, "images", "import", archive.as_posix())
    listed = ctr(paths, "images", "list", "--quiet").split()
    if name not in listed:
        raise RuntimeError(f"{archive.name} imported, but no image {name} in containerd (it has: {listed})")
    log.info("image %s imported", name)


def sandbox_ids(paths: Paths) -> list[str]:
    """The pod sandboxes this containerd knows (also after it is gone: read from its root)."""
    sandboxes = paths.directory / "root" / "io.containerd.grpc.v1.cri" / "sandboxes"
    return [d.name for d in sandboxes.iterdir()] if sandboxes.is_dir() else []
