"""A node's network: its own network namespace, one veth link to the host, and the pods' bridge (CNI).

Ranges (the same on every machine; nothing outside these is touched):
- node link ``10.200.<n>.0/30``: the host end ``.1`` (where the node reaches the API server and the
  broker through the forwarder), the node end ``.2`` (the node's InternalIP: the API server reaches
  the kubelet there). ``<n>`` is the first free one, so several environments can run at once;
- pods ``10.201.0.0/24`` (east), ``10.202.0.0/24`` (west), ``10.209.0.0/24`` otherwise, on the bridge
  ``cni0`` inside the node's namespace, masqueraded there when they leave through the link;
- Services keep the control plane's range (``controlplane.SERVICE_CIDR``), which kube-proxy programs
  inside the node's namespace only.
The host's routing table gains only the connected /30 of the link it owns; every iptables rule
(CNI masquerade, kube-proxy) lives inside the node's namespace and disappears with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import re
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LINK_NETWORK = ipaddress.ip_network("10.200.0.0/16")
POD_CIDRS = {"east": "10.201.0.0/24", "west": "10.202.0.0/24"}
OTHER_POD_CIDR = "10.209.0.0/24"
CNI_BIN_DIR = "/usr/lib/cni"
CNI_RESULTS = Path("/var/lib/cni/results")
_LOCK = Path("/run/lock/rabbitsync-network.lock")


@dataclass(frozen=True)
class NodeNetwork:
    netns: str
    host_if: str
    host_ip: str
    node_ip: str
    pod_cidr: str

    @property
    def pod_gateway(self) -> str:
        return str(next(ipaddress.ip_network(self.pod_cidr).hosts()))

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def names(node_id: str) -> tuple[str, str]:
    """The namespace and the host-side interface of node ``node_id`` (interface names: 15 bytes)."""
    return f"rabbitsync-{node_id}", f"rs{node_id}"[:15]


def link_addresses(index: int) -> tuple[str, str]:
    base = int(LINK_NETWORK.network_address) + index * 4
    return str(ipaddress.ip_address(base + 1)), str(ipaddress.ip_address(base + 2))


def used_link_indexes(ip_addr_output: str) -> set[int]:
    """Which /30s of the link network already have an address on this host."""
    used = set()
    for match in re.finditer(r"inet (\d+\.\d+\.\d+\.\d+)/", ip_addr_output):
        address = ipaddress.ip_address(match.group(1))
        if address in LINK_NETWORK:
            used.add((int(address) - int(LINK_NETWORK.network_address)) // 4)
    return used


def cni_config(network: NodeNetwork, ipam_dir: Path) -> dict[str, Any]:
    """The conflist containerd reads: a bridge with host-local addresses, the gateway on the node."""
    return {
        "cniVersion": "1.0.0",
        # Named after the node: the CNI library caches results in the host-wide /var/lib/cni/results
        # under this name, and the node's teardown removes exactly its own.
        "name": network.netns,
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": network.pod_cidr, "gateway": network.pod_gateway}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(ipam_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def _ip(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc.stdout


@contextlib.contextmanager
def _allocating() -> Iterator[None]:
    _LOCK.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def create(node_id: str, cluster: str) -> NodeNetwork:
    """Make the node's namespace and link (after removing any leftover of the same node)."""
    delete(node_id)
    netns, host_if = names(node_id)
    with _allocating():
        used = used_link_indexes(_ip("-4", "-o", "addr"))
        index = next(i for i in range(1, LINK_NETWORK.num_addresses // 4) if i not in used)
        host_ip, node_ip = link_addresses(index)
        peer = f"{host_if}n"[:15] if len(host_if) < 15 else f"{host_if[:14]}n"
        _ip("netns", "add", netns)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", netns)
        _ip("addr", "add", f"{host_ip}/30", "dev", host_if)
    _ip("link", "set", host_if, "up")
    _ip("-n", netns, "link", "set", peer, "name", "eth0")
    _ip("-n", netns, "addr", "add", f"{node_ip}/30", "dev", "eth0")
    _ip("-n", netns, "link", "set", "eth0", "up")
    _ip("-n", netns, "link", "set", "lo", "up")
    _ip("-n", netns, "route", "add", "default", "via", host_ip)
    # Per-namespace sysctl: the node routes its pods out through the link, the host does not.
    _ip("netns", "exec", netns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    return NodeNetwork(netns, host_if, host_ip, node_ip, POD_CIDRS.get(cluster, OTHER_POD_CIDR))


def forget_loopback_results(sandbox_ids: list[str]) -> None:
    """Remove the loopback results containerd caches host-wide per sandbox (``cni-loopback-<id>-lo``)."""
    for sandbox in sandbox_ids:
        (CNI_RESULTS / f"cni-loopback-{sandbox}-lo").unlink(missing_ok=True)


def delete(node_id: str) -> None:
    """Remove the namespace (its bridge, pod links and iptables go with it) and the host end; idempotent."""
    netns, host_if = names(node_id)
    _ip("netns", "delete", netns, check=False)
    _ip("link", "delete", host_if, check=False)
    for cached in CNI_RESULTS.glob(f"{netns}-*"):
        cached.unlink(missing_ok=True)
