"""Would the kubelet call the service's pod Ready? Its readiness probes, evaluated as a kubelet would.

The pod runner ignores probes, so under it a broker outage can never drop a pod from its Service,
though on a real node it would. The fault suite therefore runs the pod template's own readiness
probes itself while the broker is away: every container's ``httpGet`` readinessProbe (app containers
and native sidecars, i.e. init containers with ``restartPolicy: Always``) against the pod's IP. A pod
is Ready only when all of them answer 2xx; a NotReady pod is out of its Service, so its REST API is
gone for clients even though its process still answers.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import demo, operators, podrunner

Probe = tuple[str, int, str]
"""(container, port, path)"""


def probes(template_spec: dict[str, Any]) -> list[Probe]:
    """The httpGet readiness probes of a pod template, named ports resolved."""
    containers = list(template_spec.get("containers", []))
    containers += [c for c in template_spec.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    found = []
    for container in containers:
        get = (container.get("readinessProbe") or {}).get("httpGet")
        if not get:
            continue
        port = get["port"]
        if isinstance(port, str):
            port = next(p["containerPort"] for p in container.get("ports", []) if p.get("name") == port)
        found.append((str(container["name"]), int(port), str(get.get("path", "/"))))
    return found


def failing(ip: str, checks: list[Probe]) -> list[str]:
    """The containers whose readiness probe does not answer 2xx now."""
    return [name for name, port, path in checks if not demo.reachable(f"http://{ip}:{port}{path}")]


@dataclass
class Watch:
    """Samples every service pod's readiness once a second until stopped; counts NotReady seconds."""

    directory: Path
    kubeconfigs: dict[str, Path]
    namespace: str
    not_ready: dict[str, float] = field(default_factory=dict)
    """``cluster/service (containers)`` -> seconds seen NotReady."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        checks = {cluster: self._probes(kubeconfig) for cluster, kubeconfig in self.kubeconfigs.items()}
        self._thread = threading.Thread(target=self._run, args=(checks,), name="readiness", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _probes(self, kubeconfig: Path) -> dict[str, list[Probe]]:
        items = json.loads(operators.kubectl(kubeconfig, "get", "deployments", "-n", self.namespace, "-o", "json"))
        return {d["metadata"]["name"]: probes(d["spec"]["template"]["spec"]) for d in items["items"]}

    def _run(self, checks: dict[str, dict[str, list[Probe]]]) -> None:
        while not self._stop.wait(1.0):
            for cluster, by_service in checks.items():
                pods = podrunner.status(self.directory, cluster, self.namespace)
                for service, service_probes in by_service.items():
                    ip = pods.get(service, {}).get("ip")
                    down = failing(ip, service_probes) if ip else ["(no pod)"]
                    if down:
                        key = f"{cluster}/{service} ({', '.join(down)})"
                        self.not_ready[key] = self.not_ready.get(key, 0.0) + 1.0
