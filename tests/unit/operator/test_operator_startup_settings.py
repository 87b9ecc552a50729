"""The cluster name is refused at start when missing, malformed or a template's placeholder."""

from __future__ import annotations

from pathlib import Path

import pytest

from rabbitsync.operator.handlers import workers
from rabbitsync.operator.kube.api import api_client
from rabbitsync.operator.main import main
from rabbitsync.operator.settings import PLACEHOLDER_CLUSTERS, OperatorSettings, SettingsError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", sorted(PLACEHOLDER_CLUSTERS))
def test_a_placeholder_cluster_name_is_refused(name: str) -> None:
    with pytest.raises(SettingsError, match="is a placeholder"):
        OperatorSettings.from_env({"RABBITSYNC_CLUSTER": name})


@pytest.mark.parametrize("env", [{}, {"RABBITSYNC_CLUSTER": "  "}])
def test_a_missing_cluster_name_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="RABBITSYNC_CLUSTER is not set"):
        OperatorSettings.from_env(env)


def test_a_real_name_with_its_install_id_and_metrics_port() -> None:
    settings = OperatorSettings.from_env(
        {"RABBITSYNC_CLUSTER": "east", "RABBITSYNC_INSTALL_ID": "abc", "RABBITSYNC_METRICS_PORT": "9191"}
    )
    assert (settings.cluster, settings.install_id, settings.metrics_port) == ("east", "abc", 9191)
    assert OperatorSettings.from_env({"RABBITSYNC_CLUSTER": "east"}).metrics_port == 9090


def test_the_operator_exits_with_a_clear_error_on_the_overlay_placeholder(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # What `kubectl apply -k manifests/operator` alone used to run with.
    monkeypatch.setenv("RABBITSYNC_CLUSTER", "set-by-overlay")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "RABBITSYNC_CLUSTER='set-by-overlay' is a placeholder" in err and err[-1] == "\n" and err.count("\n") == 1


def test_the_kubernetes_client_keeps_a_connection_for_every_worker_thread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """urllib3's default (5 per core) made every call past 10 concurrent ones a new TLS connection."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    # The loader read $KUBECONFIG when it was imported.
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    settings = OperatorSettings.from_env({"RABBITSYNC_CLUSTER": "east", "RABBITSYNC_BROKER_CONNECTIONS": "20"})
    api = api_client(workers(settings))
    assert api.configuration.host == "https://127.0.0.1:6443"
    assert api.rest_client.pool_manager.connection_pool_kw["maxsize"] == workers(settings) == 40
