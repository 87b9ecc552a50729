"""The cluster name is refused at start when missing, malformed or a template's placeholder."""

from __future__ import annotations

import pytest

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
