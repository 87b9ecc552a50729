"""Readiness probes read from a pod template as a kubelet would: named ports, native sidecars included."""

from chaos.readiness import probes

TEMPLATE = {
    "initContainers": [
        {"name": "migrate"},
        {
            "name": "native",
            "restartPolicy": "Always",
            "ports": [{"name": "rs-http", "containerPort": 8088}],
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "rs-http"}},
        },
    ],
    "containers": [
        {
            "name": "app",
            "ports": [{"name": "http", "containerPort": 8000}],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
        },
        {"name": "plain", "readinessProbe": {"httpGet": {"port": 9000}}},
        {"name": "unprobed"},
    ],
}


def test_every_http_readiness_probe_counts_with_its_port_resolved():
    assert probes(TEMPLATE) == [("app", 8000, "/healthz"), ("plain", 9000, "/"), ("native", 8088, "/readyz")]


def test_a_pod_without_probes_has_none():
    assert probes({"containers": [{"name": "app"}]}) == []
