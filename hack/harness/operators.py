"""One ``rabbitsync-operator`` per cluster as a local process, running as the manifests' ServiceAccount.

Used by ``make operators-up``/``operators-down`` and by the operator integration tests, so both run the
operator the same way: CRDs and ``manifests/rbac`` applied first, then the process started with a
kubeconfig holding a bearer token from the TokenRequest API for ServiceAccount
``rabbitsync-system/rabbitsync-operator`` (never the admin certificate): what works here works under the
manifests' RBAC and nothing more.

State directory files, per cluster: ``operator-<cluster>.kubeconfig`` (the token),
``operator-<cluster>.log`` and ``operator-<cluster>.json`` (the process record ``down`` stops).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from harness import binaries, processes

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "rabbitsync-system"
SERVICE_ACCOUNT = "rabbitsync-operator"
CRDS = (
    "syncbrokers.rabbitsync.io",
    "syncsubscriptions.rabbitsync.io",
    "syncpublications.rabbitsync.io",
    "clustersyncbrokers.rabbitsync.io",
)
FIELD_MANAGER = "rabbitsync-harness"


@dataclass(frozen=True)
class OperatorProcess:
    """A running operator as recorded in the state directory."""

    cluster: str
    record: processes.ProcessRecord
    kubeconfig: str
    health_port: int
    metrics_port: int = 0

    @property
    def log(self) -> Path:
        return Path(self.record.log)

    @property
    def healthz(self) -> str:
        return f"http://127.0.0.1:{self.health_port}/healthz"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def alive(self) -> bool:
        return processes.alive(self.record)

    def tail(self, lines: int = 60) -> str:
        if not self.log.exists():
            return f"(no log at {self.log})"
        text = self.log.read_text(errors="replace").splitlines()[-lines:]
        return f"--- last lines of {self.log} ---\n" + "\n".join(text)

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> OperatorProcess:
        record = processes.ProcessRecord(**data["record"])  # type: ignore[arg-type]
        return cls(
            cluster=str(data["cluster"]),
            record=record,
            kubeconfig=str(data["kubeconfig"]),
            health_port=int(data["health_port"]),  # type: ignore[call-overload]
            metrics_port=int(data.get("metrics_port", 0)),  # type: ignore[call-overload]
        )


def kubectl(admin_kubeconfig: Path, *args: str, timeout: float = 120) -> str:
    exe = binaries.ensure_binaries().kubectl
    proc = subprocess.run(
        [str(exe), "--kubeconfig", str(admin_kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def install(admin_kubeconfig: Path) -> None:
    """Apply the CRDs, the operator's Namespace and ``manifests/rbac`` (idempotent: server-side apply)."""
    apply = ("apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}")
    kubectl(admin_kubeconfig, *apply, "-f", str(REPO_ROOT / "manifests" / "operator" / "namespace.yaml"))
    # As the README tells a user to (the folder holds only the CRDs).
    kubectl(admin_kubeconfig, *apply, "-f", str(REPO_ROOT / "crds"))
    kubectl(admin_kubeconfig, *apply, "-k", str(REPO_ROOT / "manifests" / "rbac"))
    kubectl(admin_kubeconfig, "wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{c}" for c in CRDS))


def token_kubeconfig(
    admin_kubeconfig: Path,
    path: Path,
    duration: str = "24h",
    service_account: str = SERVICE_ACCOUNT,
    namespace: str = NAMESPACE,
) -> Path:
    """A kubeconfig for a ServiceAccount (the operator's by default): the admin one's server and CA, a token."""
    token = kubectl(
        admin_kubeconfig, "create", "token", service_account, "-n", namespace, f"--duration={duration}"
    ).strip()
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": SERVICE_ACCOUNT, "context": {"cluster": cluster["name"], "user": SERVICE_ACCOUNT}}],
        "current-context": SERVICE_ACCOUNT,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


def executable() -> Path:
    beside = Path(sys.executable).parent / "rabbitsync-operator"
    found = beside if beside.exists() else shutil.which("rabbitsync-operator")
    if not found:
        raise RuntimeError("rabbitsync-operator is not installed: run make venv")
    return Path(found)


def start(
    cluster: str,
    admin_kubeconfig: Path,
    directory: Path,
    env: dict[str, str] | None = None,
    token_duration: str = "24h",
) -> OperatorProcess:
    """Install, then start the operator for ``cluster``; returns once its liveness endpoint answers."""
    directory.mkdir(parents=True, exist_ok=True)
    install(admin_kubeconfig)
    kubeconfig = token_kubeconfig(admin_kubeconfig, directory / f"operator-{cluster}.kubeconfig", token_duration)
    port, metrics_port = processes.free_port(), processes.free_port()
    script = executable()
    record = processes.spawn(
        f"operator-{cluster}",
        [str(script)],
        directory / f"operator-{cluster}.log",
        env={
            "KUBECONFIG": str(kubeconfig),
            "RABBITSYNC_CLUSTER": cluster,
            "RABBITSYNC_HEALTH_PORT": str(port),
            "RABBITSYNC_METRICS_PORT": str(metrics_port),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        },
    )
    op = OperatorProcess(
        cluster=cluster,
        record=record,
        kubeconfig=str(kubeconfig),
        health_port=port,
        metrics_port=metrics_port,
    )
    (directory / f"operator-{cluster}.json").write_text(json.dumps(op.to_json(), indent=2))
    try:
        processes.wait_until(lambda: op.alive() and healthy(op), 60, f"operator {cluster}", op.record.log)
    except TimeoutError:
        stop(op)
        raise
    return op


def healthy(op: OperatorProcess) -> bool:
    try:
        with urllib.request.urlopen(op.healthz, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def stop(op: OperatorProcess, directory: Path | None = None) -> None:
    processes.stop(op.record)
    if directory is not None:
        (directory / f"operator-{op.cluster}.json").unlink(missing_ok=True)


def recorded(directory: Path) -> list[OperatorProcess]:
    """The operators recorded in ``directory`` (running or not)."""
    return [OperatorProcess.from_json(json.loads(p.read_text())) for p in sorted(directory.glob("operator-*.json"))]


def running(directory: Path) -> list[OperatorProcess]:
    return [op for op in recorded(directory) if op.alive()]


def up(directory: Path, clusters: tuple[str, ...]) -> list[OperatorProcess]:
    """Start one operator per cluster of the dev environment in ``directory`` (skipping running ones)."""
    started = []
    already = {op.cluster: op for op in running(directory)}
    for name in clusters:
        if name in already:
            log.info("operator %s already running (pid %d)", name, already[name].record.pid)
            started.append(already[name])
            continue
        admin = directory / f"{name}.kubeconfig"
        if not admin.exists():
            raise RuntimeError(f"{admin} not found: run make dev-up first")
        # Dev tokens outlive a working day; tests ask for shorter ones.
        # Other RABBITSYNC_* settings pass through from the caller's environment.
        started.append(start(name, admin, directory, token_duration="168h"))
    return started


def down(directory: Path) -> None:
    """Stop every operator recorded in ``directory``; a no-op when none is."""
    for op in recorded(directory):
        log.info("stopping operator %s (pid %d)", op.cluster, op.record.pid)
        stop(op, directory)
