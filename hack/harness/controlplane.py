"""One local Kubernetes control plane: etcd, kube-apiserver and kube-controller-manager on loopback.

The flags follow controller-runtime's envtest (secure port on 127.0.0.1, RBAC authorization, a
service-account issuer and keys, an admin client certificate in ``system:masters``) plus
kube-controller-manager, without which namespaces never finish terminating, nothing is garbage
collected and Deployments get no ReplicaSets. There is no kubelet and no scheduler: the harness's
pod runner plays the kubelet's part where a test needs containers to run.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from harness import pki, processes
from harness.binaries import Binaries

SERVICE_CIDR = "10.0.0.0/24"


@dataclass(frozen=True)
class Cluster:
    """A running cluster, as recorded in the state directory."""

    name: str
    server: str
    kubeconfig: str
    ca_cert: str
    processes: tuple[processes.ProcessRecord, ...]

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Cluster:
        procs = tuple(processes.ProcessRecord(**p) for p in data["processes"])  # type: ignore[attr-defined]
        return cls(
            name=str(data["name"]),
            server=str(data["server"]),
            kubeconfig=str(data["kubeconfig"]),
            ca_cert=str(data["ca_cert"]),
            processes=procs,
        )

    def alive(self) -> bool:
        return all(processes.alive(p) for p in self.processes)


def write_kubeconfig(
    path: Path,
    *,
    cluster: str,
    server: str,
    ca_cert: Path,
    user: dict[str, str],
    namespace: str = "default",
    tls_server_name: str | None = None,
) -> None:
    """``tls_server_name``: the name to verify when ``server`` is an address the certificate does not list."""
    entry = {"server": server, "certificate-authority": str(ca_cert)}
    if tls_server_name:
        entry["tls-server-name"] = tls_server_name
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": entry}],
        "users": [{"name": f"{cluster}-user", "user": user}],
        "contexts": [
            {"name": cluster, "context": {"cluster": cluster, "user": f"{cluster}-user", "namespace": namespace}}
        ],
        "current-context": cluster,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


def _ready(url: str, ctx: ssl.SSLContext) -> bool:
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start(name: str, binaries: Binaries, directory: Path, kubeconfig: Path) -> Cluster:
    """Start cluster ``name`` with its data under ``directory``; return once /readyz answers."""
    certs = pki.generate(directory / "pki")
    logs = directory / "logs"
    etcd_port, etcd_peer, api_port, kcm_port = (processes.free_port() for _ in range(4))
    etcd = processes.spawn(
        "etcd",
        [
            str(binaries.etcd),
            "--name=default",
            f"--data-dir={directory / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-cluster=default=http://127.0.0.1:{etcd_peer}",
            # Test data is disposable; fsync on every write makes a 2-core machine crawl.
            "--unsafe-no-fsync",
            "--quota-backend-bytes=2147483648",
        ],
        logs / "etcd.log",
    )
    processes.wait_until(lambda: processes.port_open(etcd_port), 60, f"{name} etcd", etcd.log)
    server = f"https://127.0.0.1:{api_port}"
    apiserver = processes.spawn(
        "kube-apiserver",
        [
            str(binaries.kube_apiserver),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--tls-cert-file={certs.serving_cert}",
            f"--tls-private-key-file={certs.serving_key}",
            f"--client-ca-file={certs.ca_cert}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={server}",
            f"--service-account-key-file={certs.sa_pub}",
            f"--service-account-signing-key-file={certs.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",
            # A real node's name resolves nowhere (and must not be looked up outside): dial its IP.
            "--kubelet-preferred-address-types=InternalIP",
        ],
        logs / "kube-apiserver.log",
    )
    ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
    ctx.load_cert_chain(str(certs.admin_cert), str(certs.admin_key))
    processes.wait_until(lambda: _ready(f"{server}/readyz", ctx), 120, f"{name} kube-apiserver", apiserver.log)
    write_kubeconfig(
        kubeconfig,
        cluster=name,
        server=server,
        ca_cert=certs.ca_cert,
        user={"client-certificate": str(certs.admin_cert), "client-key": str(certs.admin_key)},
    )
    kcm = processes.spawn(
        "kube-controller-manager",
        [
            str(binaries.kube_controller_manager),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={kcm_port}",
            "--leader-elect=false",
            f"--service-account-private-key-file={certs.sa_key}",
            f"--root-ca-file={certs.ca_cert}",
            f"--cluster-signing-cert-file={certs.ca_cert}",
            f"--cluster-signing-key-file={certs.ca_key}",
            "--use-service-account-credentials=false",
            f"--cert-dir={directory / 'kcm-certs'}",
        ],
        logs / "kube-controller-manager.log",
    )
    kcm_ctx = ssl.create_default_context()
    kcm_ctx.check_hostname = False
    kcm_ctx.verify_mode = ssl.CERT_NONE
    processes.wait_until(
        lambda: _ready(f"https://127.0.0.1:{kcm_port}/healthz", kcm_ctx), 90, f"{name} kube-controller-manager", kcm.log
    )
    return Cluster(
        name=name,
        server=server,
        kubeconfig=str(kubeconfig),
        ca_cert=str(certs.ca_cert),
        processes=(etcd, apiserver, kcm),
    )


def stop(cluster: Cluster) -> None:
    # Reverse order: the controller manager and API server first, etcd last so they shut down cleanly.
    for record in reversed(cluster.processes):
        processes.stop(record)
