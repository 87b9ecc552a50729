"""A real node per cluster: kube-scheduler, containerd + runc + CNI, a kubelet and kube-proxy.

What makes a node (see network.py for the addresses, containerd.py and cgroups.py for isolation):
- a network namespace ``rabbitsync-<node id>`` linked to the host by one veth; containerd, the
  kubelet (so its probes reach the pod IPs) and kube-proxy (so its rules apply to the pods) run in it;
- a forwarder (forward.py) on the host end of the link, the node's only way to the host's loopback:
  the API server and whatever ``host_ports`` the caller names (the broker);
- the kubelet authenticates with a client certificate ``system:node:<cluster>-node`` (group
  ``system:nodes``, bound to ClusterRole ``system:node``: the API server authorizes with RBAC
  only), kube-proxy as ``system:kube-proxy`` (bound by the default ``system:node-proxier``);
- the API server has ``--endpoint-reconciler-type=none``, so the harness points the ``kubernetes``
  Service at the forwarder with an EndpointSlice: in-cluster clients (the operator) work unchanged;
- the scheduler runs on the host with the admin kubeconfig, as a control-plane component would.
Every process of the node lives in the cgroup subtree ``/rabbitsync/<node id>``; ``stop`` empties
it, unmounts what the kubelet mounted, removes the namespace and the directory. The node id is
derived from the node's directory, so a crashed run's leftovers are swept by the next ``start``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness import cgroups, containerd, controlplane, image, network, operators, pki, processes
from harness.binaries import NodeBinaries

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
CGROUP_ROOT = "/rabbitsync"
NODES_CPU_SHARES = 4096
API_SERVER_NAME = "localhost"
"""A name in the API server's certificate, verified instead of the forwarder's address."""


@dataclass(frozen=True)
class Node:
    """A running node, as recorded in the state directory."""

    cluster: str
    name: str
    node_id: str
    directory: str
    network: network.NodeNetwork
    processes: tuple[processes.ProcessRecord, ...]

    @property
    def cgroup(self) -> str:
        return f"{CGROUP_ROOT}/{self.node_id}"

    def alive(self) -> bool:
        return all(processes.alive(p) for p in self.processes)

    def to_json(self) -> dict[str, object]:
        return {
            "cluster": self.cluster,
            "name": self.name,
            "node_id": self.node_id,
            "directory": self.directory,
            "network": self.network.to_json(),
            "processes": [vars(p) for p in self.processes],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Node:
        return cls(
            cluster=str(data["cluster"]),
            name=str(data["name"]),
            node_id=str(data["node_id"]),
            directory=str(data["directory"]),
            network=network.NodeNetwork(**data["network"]),
            processes=tuple(processes.ProcessRecord(**p) for p in data["processes"]),
        )


def node_id(directory: Path, cluster: str) -> str:
    """Short (interface names are 15 bytes), stable for a directory, distinct across directories."""
    return cluster[:4] + hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:6]


def kubelet_config(directory: Path, cgroup: str, socket: Path, node_ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # This machine type has cgroup v1 (hybrid); v1.35 refuses it unless told otherwise.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": cgroup,
        "containerRuntimeEndpoint": f"unix://{socket}",
        "address": node_ip,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        # The API server reaches the kubelet (logs, exec) with no client certificate; only the node's
        # link reaches this port.
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "failSwapOn": False,
        # Lowering an OOM score needs CAP_SYS_RESOURCE, which root lacks on these machines.
        "oomScoreAdj": 0,
        # No nameserver: a pod's lookup fails at once on its own loopback instead of leaving the node.
        "resolvConf": str(directory / "resolv.conf"),
        # A shared developer disk is not this node's to police, and the imported images are not
        # re-pullable: never evict for disk, never collect images.
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "fileCheckFrequency": "5s",
        "syncFrequency": "10s",
        "nodeStatusReportFrequency": "10s",
        # Not the host-wide /var/log/pods: the node's teardown removes its logs with its directory.
        "podLogsDir": str(directory / "pod-logs"),
    }


def proxy_config(kubeconfig: Path, node_name: str, pod_cidr: str) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "hostnameOverride": node_name,
        "clusterCIDR": pod_cidr,
        "oomScoreAdj": 0,
        "metricsBindAddress": "127.0.0.1:10249",
        "healthzBindAddress": "127.0.0.1:10256",
        # Pod-to-Service-to-pod on one bridge needs the reply to come back through the node.
        "iptables": {"masqueradeAll": True},
        # Zero leaves the kernel's conntrack settings alone: they are host-wide, not the node's.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }


def _rbac_and_endpoints(host_ip: str, api_port: int) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "rabbitsync-harness:nodes"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:node"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}],
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "kubernetes-harness",
                "namespace": "default",
                "labels": {
                    "kubernetes.io/service-name": "kubernetes",
                    "endpointslice.kubernetes.io/managed-by": "rabbitsync-harness",
                },
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [host_ip], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": api_port, "protocol": "TCP"}],
        },
    ]


def _component_kubeconfigs(
    cluster: str, node_name: str, directory: Path, admin_entry: dict[str, str], server: str
) -> dict[str, Path]:
    """Client-certificate kubeconfigs for the kubelet and kube-proxy, through the node's forwarder."""
    certs = pki.generate(Path(admin_entry["certificate-authority"]).parent)
    kubeconfigs = {}
    for component, user, groups in (
        ("kubelet", f"system:node:{node_name}", ("system:nodes",)),
        ("kube-proxy", "system:kube-proxy", ()),
    ):
        cert, key = pki.client_certificate(certs, directory / "pki", user, groups)
        kubeconfigs[component] = directory / f"{component}.kubeconfig"
        controlplane.write_kubeconfig(
            kubeconfigs[component],
            cluster=cluster,
            server=server,
            ca_cert=certs.ca_cert,
            user={"client-certificate": str(cert), "client-key": str(key)},
            tls_server_name=API_SERVER_NAME,
        )
    return kubeconfigs


def _spawn_in(cgroup: str, name: str, argv: list[str], log_file: Path) -> processes.ProcessRecord:
    record = processes.spawn(name, argv, log_file, env={"PYTHONPATH": str(REPO_ROOT / "hack")})
    cgroups.add(cgroup, record.pid)
    return record


def _node_ready(admin_kubeconfig: Path, name: str) -> bool:
    try:
        out = operators.kubectl(
            admin_kubeconfig, "get", "node", name, "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'
        )
    except RuntimeError:
        return False
    return out.strip() == "True"


PACKAGES = ("containerd", "runc", "containernetworking-plugins", "iptables", "conntrack")
"""What a node runs, from Debian 12: installed on first use (``apt.ensure``); the image build has its own."""


def enabled() -> bool:
    """Whether the demo and the e2e suite run on real nodes (the default) or the pod runner.

    ``RABBITSYNC_NODES=podrunner`` picks the pod runner: the checkout as it is, in seconds, without
    root or an image; what only a kubelet enforces then goes untested.
    """
    choice = os.environ.get("RABBITSYNC_NODES", "real")
    if choice not in ("real", "podrunner"):
        raise ValueError(f"RABBITSYNC_NODES={choice!r}: use real (the default) or podrunner")
    return choice == "real"


def start(
    cluster: str,
    admin: Path,
    directory: Path,
    bins: NodeBinaries,
    images: image.Images,
    host_ports: tuple[int, ...] = (),
) -> Node:
    """Start the node of ``cluster`` (admin kubeconfig ``admin``) under ``directory``; return once it is Ready.

    A node that fails to come up is swept before the error propagates: nothing of it is left running.
    """
    nid = node_id(directory, cluster)
    sweep(directory, nid)
    try:
        return _start(cluster, admin, directory, nid, bins, images, host_ports)
    except BaseException:
        sweep(directory, nid)
        raise


def _start(
    cluster: str,
    admin: Path,
    directory: Path,
    nid: str,
    bins: NodeBinaries,
    images: image.Images,
    host_ports: tuple[int, ...],
) -> Node:
    started = time.monotonic()
    directory.mkdir(parents=True)
    logs = directory / "logs"
    entry = yaml.safe_load(admin.read_text())["clusters"][0]["cluster"]
    name = f"{cluster}-node"
    cgroup = f"{CGROUP_ROOT}/{nid}"
    system = f"{cgroup}/system"
    cgroups.create(system)
    # Under cgroup v1 every process outside a cgroup weighs as much as a whole cgroup: without more
    # weight, all nodes together get one process's share of a busy machine and their probes time out.
    cgroups.set_knob(CGROUP_ROOT, "cpu.shares", str(NODES_CPU_SHARES))
    net = network.create(nid, cluster)
    api_port = urllib.parse.urlsplit(entry["server"]).port or 443
    rules = [f"{net.host_ip}:{port}=127.0.0.1:{port}" for port in (api_port, *host_ports)]
    records = [_spawn_in(system, "forwarder", [sys.executable, "-m", "harness.forward", *rules], logs / "forward.log")]

    kubeconfigs = _component_kubeconfigs(cluster, name, directory, entry, f"https://{net.host_ip}:{api_port}")
    objects = directory / "cluster-objects.yaml"
    objects.write_text(yaml.safe_dump_all(_rbac_and_endpoints(net.host_ip, api_port)))
    operators.kubectl(admin, "apply", "--server-side", "--force-conflicts", "-f", str(objects))

    scheduler_port = processes.free_port()
    records.append(
        _spawn_in(
            system,
            "kube-scheduler",
            [
                str(bins.kube_scheduler),
                f"--kubeconfig={admin}",
                f"--authentication-kubeconfig={admin}",
                f"--authorization-kubeconfig={admin}",
                "--bind-address=127.0.0.1",
                f"--secure-port={scheduler_port}",
                "--leader-elect=false",
            ],
            logs / "kube-scheduler.log",
        )
    )

    runtime = containerd.Paths(directory / "containerd")
    records.append(containerd.start(runtime, net, images.pause.name, logs / "containerd.log"))
    cgroups.add(system, records[-1].pid)
    for archive in (images.pause, images.app):
        containerd.import_image(runtime, archive.path, archive.name)

    (directory / "resolv.conf").write_text("options timeout:1 attempts:1\n")
    config = directory / "kubelet.yaml"
    config.write_text(yaml.safe_dump(kubelet_config(directory, cgroup, runtime.socket, net.node_ip)))
    kubelet = _spawn_in(
        system,
        "kubelet",
        [
            # nsenter, not `ip netns exec`: the kubelet's volume mounts must be in the host's mount
            # namespace, where containerd (and runc) see them.
            "nsenter",
            f"--net=/run/netns/{net.netns}",
            "--",
            str(bins.kubelet),
            f"--config={config}",
            f"--kubeconfig={kubeconfigs['kubelet']}",
            f"--root-dir={directory / 'kubelet'}",
            f"--cert-dir={directory / 'kubelet-pki'}",
            f"--hostname-override={name}",
            f"--node-ip={net.node_ip}",
        ],
        logs / "kubelet.log",
    )
    records.append(kubelet)
    proxy = directory / "kube-proxy.yaml"
    proxy.write_text(yaml.safe_dump(proxy_config(kubeconfigs["kube-proxy"], name, net.pod_cidr)))
    records.append(
        _spawn_in(
            system,
            "kube-proxy",
            ["ip", "netns", "exec", net.netns, str(bins.kube_proxy), f"--config={proxy}"],
            logs / "kube-proxy.log",
        )
    )
    processes.wait_until(lambda: _node_ready(admin, name), 180, f"{cluster} node Ready", kubelet.log)
    log.info("%s: node %s Ready in %.1fs", cluster, name, time.monotonic() - started)
    return Node(cluster, name, nid, str(directory), net, tuple(records))


def _mounts_under(directory: Path) -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(directory) or point.startswith(f"{directory}/"):
            points.append(point)
    return points


def sweep(directory: Path, nid: str) -> None:
    """Remove everything node ``nid`` may have left (running or crashed): processes, mounts, network, files."""
    cgroups.stop(f"{CGROUP_ROOT}/{nid}")
    # Deepest first; lazily, so a mount still busy for a moment never fails the teardown.
    for point in sorted(_mounts_under(directory.resolve()), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True)
    network.delete(nid)
    network.forget_loopback_results(containerd.sandbox_ids(containerd.Paths(directory / "containerd")))
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(directory)


def stop(node: Node) -> None:
    # Every process of the node is in its cgroup: one SIGTERM to all of them, then SIGKILL.
    sweep(Path(node.directory), node.node_id)
    # Not in sweep: a sweep before a start would race another node creating its subtree.
    cgroups.remove_if_empty(CGROUP_ROOT)


def save(nodes: dict[str, Node], path: Path) -> None:
    path.write_text(json.dumps({name: n.to_json() for name, n in nodes.items()}, indent=2))


def load(path: Path) -> dict[str, Node]:
    if not path.exists():
        return {}
    return {name: Node.from_json(data) for name, data in json.loads(path.read_text()).items()}
