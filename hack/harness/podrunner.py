"""A stand-in for the kubelet: run the containers of Deployments' pod templates as local processes.

There is no container runtime on our machines, so the harness plays the kubelet's part for the demo
and the e2e tests: it watches the Deployments of a namespace and, for each, runs every container of
the pod template *as written* (command, args, env with ``valueFrom`` and ``$(VAR)`` expansion,
workingDir, volume mounts), so the sidecar spec the operator injected is exactly what runs.

What stands in for what:
- the image's filesystem: ``/app`` in a private mount namespace is the repository (the Dockerfile
  copies the repository to ``/app``), and ``python`` is the project's virtualenv seen through it
  (``/app/.venv``), so that volumes mounted over host paths (``/tmp``) never hide the interpreter;
- ``emptyDir`` volumes: a directory per pod under the state directory, bind-mounted at mountPath;
- ``persistentVolumeClaim`` volumes: a directory per claim under the state directory, which outlives
  the pods that mount it, as a provisioned volume would;
- the pod network: each pod gets its own loopback address (``status.podIP``), so the containers of
  different pods can listen on the same port, as they would in a cluster;
- the service-account token: as the kubelet does, a token from the TokenRequest API for the pod's
  ServiceAccount, the cluster CA and the namespace are mounted at
  ``/var/run/secrets/kubernetes.io/serviceaccount`` and ``KUBERNETES_SERVICE_HOST/PORT`` point at the
  API server, so in-cluster configuration (and RBAC) works unchanged.
A changed pod template replaces the pod (one rollout); a container that exits is restarted with
capped backoff (restartPolicy Always); a deleted Deployment's pod is stopped.

Init containers run to completion in order, except native sidecars (``restartPolicy: Always``), which
the kubelet starts in their place in that order, keeps running and restarts like app containers, and
stops after the app containers. Pod readiness is the kubelet's: every app container and native sidecar
with a ``readinessProbe`` (``httpGet``) answers 2xx/3xx at the pod's address; ``pods.json`` reports it
as ``ready``, the Ready condition a Service would route by.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from harness import processes

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE_ROOT = "/app"
SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


@dataclass
class Container:
    name: str
    command: list[str]
    """The command as the pod template declares it (after ``$(VAR)`` expansion)."""
    argv: list[str]
    """``command`` wrapped in its mount namespace."""
    env: dict[str, str]
    record: processes.ProcessRecord | None = None
    restarts: int = 0
    next_start: float = 0.0
    sidecar: bool = False
    """A native sidecar: an init container with ``restartPolicy: Always``."""
    readiness: dict[str, Any] | None = None
    """The container's ``readinessProbe``, if it has one."""
    ports: dict[str, int] = field(default_factory=dict)
    """Named ports, to resolve a probe's ``port: <name>``."""


@dataclass
class Pod:
    deployment: str
    name: str
    ip: str
    template_hash: str
    directory: Path
    containers: list[Container] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)


def probe_ok(probe: dict[str, Any], ip: str, ports: dict[str, int], timeout: float = 1.0) -> bool:
    """One ``httpGet`` probe as the kubelet runs it: a 2xx or 3xx answer passes. Other kinds are not modelled."""
    get = probe.get("httpGet")
    if get is None:
        return True
    port = get["port"] if isinstance(get["port"], int) else ports.get(str(get["port"]), 0)
    url = f"http://{ip}:{port}{get.get('path', '/')}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 400
    except (OSError, ValueError):  # refused, timed out, or an HTTP error status (HTTPError is an OSError)
        return False


def template_hash(template: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def pod_name(kubeconfig: Path, namespace: str, deployment: str) -> str:
    """The name the runner gives the pod of ``deployment``'s current template (read as the runner reads it)."""
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        found = api.sanitize_for_serialization(client.AppsV1Api(api).read_namespaced_deployment(deployment, namespace))
    finally:
        api.close()
    return f"{deployment}-{template_hash(found['spec']['template'])[:8]}-local"


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: known variables are replaced, unknown ones stay as written."""
    return _VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), value)


class PodRunner:
    def __init__(
        self, cluster: str, kubeconfig: Path, namespace: str, state: Path, ip_prefix: str, ip_base: int = 10
    ) -> None:
        self.cluster, self.namespace, self.ip_prefix = cluster, namespace, ip_prefix
        self.state = state / "pods" / cluster / namespace
        self.api = config.new_client_from_config(config_file=str(kubeconfig))
        kubecfg = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]
        self.server = urllib.parse.urlsplit(kubecfg["server"])
        self.ca_cert = Path(kubecfg["certificate-authority"])
        self.pods: dict[str, Pod] = {}
        self._ip_base = ip_base
        self._ips: dict[str, str] = {}

    # -- resolving a container's environment, as the kubelet does --------------------------------

    def _secret_key(self, name: str, key: str) -> str:
        secret = client.CoreV1Api(self.api).read_namespaced_secret(name, self.namespace)
        return base64.b64decode((secret.data or {})[key]).decode()

    def _config_map_key(self, name: str, key: str) -> str:
        return (client.CoreV1Api(self.api).read_namespaced_config_map(name, self.namespace).data or {})[key]

    def _field(self, path: str, pod: Pod) -> str:
        fields = {
            "metadata.name": pod.name,
            "metadata.namespace": self.namespace,
            "status.podIP": pod.ip,
            "status.hostIP": "127.0.0.1",
            "spec.nodeName": "local",
        }
        return fields[path]

    @staticmethod
    def _python_bin() -> str:
        """The image's ``python``: the checkout's virtualenv seen through /app, else this interpreter's."""
        if (REPO_ROOT / ".venv" / "bin" / "python").exists():
            return f"{IMAGE_ROOT}/.venv/bin"
        return str(Path(sys.executable).parent)

    def _service_account(self, template_spec: dict[str, Any], pod: Pod) -> Path | None:
        """The projected token volume, or None when the pod opts out of it."""
        if template_spec.get("automountServiceAccountToken") is False:
            return None
        account = template_spec.get("serviceAccountName") or "default"
        token = client.CoreV1Api(self.api).create_namespaced_service_account_token(
            account,
            self.namespace,
            client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=86400)),
        )
        directory = pod.directory / "serviceaccount"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "token").write_text(token.status.token)
        (directory / "ca.crt").write_bytes(self.ca_cert.read_bytes())
        (directory / "namespace").write_text(self.namespace)
        return directory

    def _env(self, spec: dict[str, Any], pod: Pod) -> dict[str, str]:
        env = {
            "PATH": f"{self._python_bin()}:/usr/local/bin:/usr/bin:/bin",
            # As in the image: the package and the services importable from /app, whatever the host path
            # of the checkout (a volume mounted at /tmp must not hide a checkout that lives under /tmp).
            "PYTHONPATH": f"{IMAGE_ROOT}/operator:{IMAGE_ROOT}/services",
            "HOME": str(pod.directory),
            "PYTHONUNBUFFERED": "1",
            "HOSTNAME": pod.name,
            "KUBERNETES_SERVICE_HOST": self.server.hostname or "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.server.port or 443),
        }
        for source in spec.get("envFrom", []):
            if "secretRef" in source:
                data = (
                    client.CoreV1Api(self.api).read_namespaced_secret(source["secretRef"]["name"], self.namespace).data
                )
                env.update({k: base64.b64decode(v).decode() for k, v in (data or {}).items()})
            elif "configMapRef" in source:
                cm = client.CoreV1Api(self.api).read_namespaced_config_map(
                    source["configMapRef"]["name"], self.namespace
                )
                env.update(cm.data or {})
        for var in spec.get("env", []):
            if "value" in var:
                env[var["name"]] = expand(var["value"], env)
            elif "valueFrom" in var:
                ref = var["valueFrom"]
                if "secretKeyRef" in ref:
                    env[var["name"]] = self._secret_key(ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"])
                elif "configMapKeyRef" in ref:
                    env[var["name"]] = self._config_map_key(
                        ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"]
                    )
                elif "fieldRef" in ref:
                    env[var["name"]] = self._field(ref["fieldRef"]["fieldPath"], pod)
            else:
                env[var["name"]] = ""
        return env

    def _argv(
        self, spec: dict[str, Any], command: list[str], volumes: dict[str, Path], account: Path | None
    ) -> list[str]:
        mounts = [(str(REPO_ROOT), IMAGE_ROOT)]
        mounts += [(str(volumes[m["name"]]), m["mountPath"]) for m in spec.get("volumeMounts", [])]
        if account is not None:
            mounts.append((str(account), SA_MOUNT))
        steps = [
            f"mkdir -p {shlex.quote(dst)} && mount --bind {shlex.quote(src)} {shlex.quote(dst)}" for src, dst in mounts
        ]
        steps.append(f"cd {shlex.quote(spec.get('workingDir') or '/')}")
        steps.append('exec "$@"')
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            " && ".join(steps),
            "sh",
            *command,
        ]

    # -- pod lifecycle -----------------------------------------------------------------------------

    def _start_pod(self, deployment: dict[str, Any]) -> Pod:
        template = deployment["spec"]["template"]
        name = deployment["metadata"]["name"]
        digest = template_hash(template)
        if name not in self._ips:
            # One address per Deployment for the runner's lifetime: its old pod is gone before a new one starts.
            self._ips[name] = f"{self.ip_prefix}.{self._ip_base + len(self._ips)}"
        pod = Pod(
            deployment=name,
            name=f"{name}-{digest[:8]}-local",  # as pod_name() says
            ip=self._ips[name],
            template_hash=digest,
            directory=self.state / f"{name}-{digest}",
        )
        pod.directory.mkdir(parents=True, exist_ok=True)
        volumes: dict[str, Path] = {}
        for volume in template["spec"].get("volumes", []):
            claim = volume.get("persistentVolumeClaim")
            path = self.state / "claims" / claim["claimName"] if claim else pod.directory / "volumes" / volume["name"]
            path.mkdir(parents=True, exist_ok=True)
            volumes[volume["name"]] = path
        account = self._service_account(template["spec"], pod)
        # Init containers run one after the other to completion before any app container starts; a native
        # sidecar is started in its turn and stays (the kubelet moves on once it runs: it has no startupProbe).
        for spec in template["spec"].get("initContainers", []):
            container = self._container(spec, pod, volumes, account)
            if spec.get("restartPolicy") == "Always":
                container.sidecar = True
                pod.containers.append(container)
                self._launch(pod, container)
            else:
                self._run_to_completion(pod, container)
        apps = [self._container(spec, pod, volumes, account) for spec in template["spec"]["containers"]]
        pod.containers.extend(apps)
        for container in pod.containers:
            pod.ports.update({f"{container.name}/{name}": number for name, number in container.ports.items()})
        for container in apps:
            self._launch(pod, container)
        log.info(
            "%s/%s: started pod %s at %s (%s)",
            self.cluster,
            self.namespace,
            pod.name,
            pod.ip,
            ", ".join(c.name for c in pod.containers),
        )
        return pod

    def _container(self, spec: dict[str, Any], pod: Pod, volumes: dict[str, Path], account: Path | None) -> Container:
        env = self._env(spec, pod)
        command = [expand(a, env) for a in (spec.get("command") or []) + (spec.get("args") or [])]
        if not command:
            raise ValueError(f"container {spec['name']}: no command (the image's entrypoint is not modelled)")
        ports = {str(p.get("name", p["containerPort"])): int(p["containerPort"]) for p in spec.get("ports", [])}
        return Container(
            spec["name"],
            command,
            self._argv(spec, command, volumes, account),
            env,
            readiness=spec.get("readinessProbe"),
            ports=ports,
        )

    def _run_to_completion(self, pod: Pod, container: Container, timeout: float = 300) -> None:
        logfile = pod.directory / f"{container.name}.log"
        with logfile.open("a") as out:
            out.write(f"--- init at {time.strftime('%H:%M:%S')}: {shlex.join(container.command)}\n")
            out.flush()
            code = subprocess.run(
                container.argv, env=container.env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False
            ).returncode
        if code != 0:
            raise ValueError(f"init container {container.name} exited {code} (log: {logfile})")

    def _launch(self, pod: Pod, container: Container) -> None:
        logfile = pod.directory / f"{container.name}.log"
        logfile.parent.mkdir(parents=True, exist_ok=True)
        with logfile.open("a") as out:
            out.write(
                f"--- start #{container.restarts} at {time.strftime('%H:%M:%S')}: {shlex.join(container.command)}\n"
            )
        container.record = processes.spawn(container.name, container.argv, logfile, env=container.env, clean_env=True)

    def _stop_pod(self, pod: Pod) -> None:
        # As the kubelet: the app containers first, then the native sidecars in reverse order, so a sidecar
        # outlives the app it serves.
        apps = [c for c in pod.containers if not c.sidecar]
        sidecars = [c for c in reversed(pod.containers) if c.sidecar]
        for container in [*apps, *sidecars]:
            if container.record is not None:
                processes.stop(container.record, timeout=15)
        log.info("%s/%s: stopped pod %s", self.cluster, self.namespace, pod.name)

    def sync_once(self) -> None:
        try:
            items = client.AppsV1Api(self.api).list_namespaced_deployment(self.namespace).items
        except ApiException as e:
            log.warning("listing deployments failed: %s", e.reason)
            return
        except urllib3.exceptions.HTTPError as e:
            # The API server is away (restarting): a kubelet keeps its pods running meanwhile.
            log.warning("listing deployments failed: %s", e)
            return
        wanted = self._wanted(items)
        for name in list(self.pods):
            pod = self.pods[name]
            if name not in wanted or template_hash(wanted[name]["spec"]["template"]) != pod.template_hash:
                self._stop_pod(pod)
                del self.pods[name]
        for name, deployment in wanted.items():
            if name not in self.pods:
                try:
                    self.pods[name] = self._start_pod(deployment)
                except (
                    ApiException,
                    urllib3.exceptions.HTTPError,
                    KeyError,
                    ValueError,
                    subprocess.TimeoutExpired,
                ) as e:
                    log.warning("%s/%s: cannot start pod of %s yet: %s", self.cluster, self.namespace, name, e)
        now = time.monotonic()
        for pod in self.pods.values():
            for container in pod.containers:
                self._restart_if_exited(pod, container, now)
        self._write_status()

    def _wanted(self, items: list[Any]) -> dict[str, dict[str, Any]]:
        """The Deployments that should have a pod: scaled above zero and not being deleted."""
        wanted = {}
        for d in items:
            raw = self.api.sanitize_for_serialization(d)
            if (raw["spec"].get("replicas", 1) or 0) > 0 and not raw["metadata"].get("deletionTimestamp"):
                wanted[raw["metadata"]["name"]] = raw
        return wanted

    def _restart_if_exited(self, pod: Pod, container: Container, now: float) -> None:
        """A kubelet's restartPolicy Always, with its capped backoff: note the exit, restart once due."""
        if container.record is None or processes.alive(container.record):
            return
        if container.next_start == 0.0:
            container.restarts += 1
            container.next_start = now + min(30.0, 2.0 ** min(container.restarts, 5))
            log.warning("%s: container %s exited; restart #%d soon", pod.name, container.name, container.restarts)
        elif now >= container.next_start:
            container.next_start = 0.0
            self._launch(pod, container)

    @staticmethod
    def _ready(pod: Pod, container: Container) -> bool:
        """The kubelet's readiness of one container: running, and its ``readinessProbe`` (if any) passes."""
        if container.record is None or not processes.alive(container.record):
            return False
        return container.readiness is None or probe_ok(container.readiness, pod.ip, container.ports)

    def _write_status(self) -> None:
        status = {
            name: {
                "pod": pod.name,
                "ip": pod.ip,
                "ports": pod.ports,
                "ready": all(self._ready(pod, c) for c in pod.containers),
                "containers": {
                    c.name: {
                        "pid": c.record.pid if c.record else None,
                        "start_ticks": c.record.start_ticks if c.record else None,
                        "restarts": c.restarts,
                        "command": c.command,
                        "sidecar": c.sidecar,
                    }
                    for c in pod.containers
                },
            }
            for name, pod in self.pods.items()
        }
        path = self.state / "pods.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status, indent=2))
        tmp.replace(path)

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        try:
            while not stop.is_set():
                self.sync_once()
                stop.wait(interval)
        finally:
            for pod in self.pods.values():
                self._stop_pod(pod)
            self.pods.clear()
            self._write_status()


def run_forever(cluster: str, kubeconfig: Path, namespaces: list[str], state: Path, ip_prefix: str) -> None:
    """Run the pods of ``namespaces`` until SIGTERM/SIGINT, then stop them all (``python -m harness pods``)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # Each namespace's runner draws pod IPs from its own block of 40 addresses.
    runners = [
        PodRunner(cluster, kubeconfig, ns, state, ip_prefix, ip_base=10 + 40 * i) for i, ns in enumerate(namespaces)
    ]
    threads = [threading.Thread(target=r.run, args=(stop,), name=f"pods-{r.namespace}") for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def status(state: Path, cluster: str, namespace: str) -> dict[str, Any]:
    """What the runner of ``cluster``/``namespace`` reports: pods, their IPs, ports and containers."""
    path = state / "pods" / cluster / namespace / "pods.json"
    return json.loads(path.read_text()) if path.exists() else {}


def start_runner(
    directory: Path, cluster: str, kubeconfig: Path, namespaces: tuple[str, ...], ip_prefix: str
) -> processes.ProcessRecord:
    """Run ``python -m harness pods`` for ``cluster`` in the background, recorded for ``stop_runners``."""
    record = processes.spawn(
        f"podrunner-{cluster}",
        [
            sys.executable,
            "-m",
            "harness",
            "pods",
            "--clusters",
            cluster,
            "--namespaces",
            ",".join(namespaces),
            "--ip-prefix",
            ip_prefix,
            "--kubeconfig",
            str(kubeconfig),
        ],
        directory / f"podrunner-{cluster}.log",
        env={"PYTHONPATH": str(REPO_ROOT / "hack"), "RABBITSYNC_STATE_DIR": str(directory)},
    )
    (directory / f"podrunner-{cluster}.json").write_text(json.dumps(asdict(record)))
    return record


def stop_runners(directory: Path) -> None:
    """Stop the background runners recorded in ``directory``; each stops its pods first (SIGTERM).

    A runner that was SIGKILLed (a killed test session) could not stop its pods, whose containers run
    in sessions of their own: they would hold their pod IPs' ports for the next run. So the containers
    its last ``pods.json`` lists are stopped as well when still alive (pid and start time both match).
    """
    for path in directory.glob("podrunner-*.json"):
        processes.stop(processes.ProcessRecord(**json.loads(path.read_text())), timeout=60)
        path.unlink()
    for path in directory.glob("pods/*/*/pods.json"):
        for record in _container_records(json.loads(path.read_text())):
            processes.stop(record)


def _container_records(status: dict[str, Any]) -> list[processes.ProcessRecord]:
    return [
        processes.ProcessRecord(name=name, pid=c["pid"], start_ticks=c["start_ticks"], log="")
        for pod in status.values()
        for name, c in pod["containers"].items()
        if c.get("pid") and c.get("start_ticks") is not None
    ]
