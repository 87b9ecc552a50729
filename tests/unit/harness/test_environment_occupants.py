"""The tests reuse a running dev environment only when nothing is deployed on it (tests/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import beside, environment, operators, processes, rabbitmq

pytestmark = pytest.mark.unit


def _env(directory: Path) -> environment.Environment:
    broker = rabbitmq.Broker(amqp_url="amqp://", management_url="http://", node="n", owned=True, base=str(directory))
    return environment.Environment(directory=directory, clusters={}, broker=broker)


def _record_operator(directory: Path, record: processes.ProcessRecord) -> None:
    op = operators.OperatorProcess(cluster="east", record=record, kubeconfig="k", health_port=1)
    (directory / "operator-east.json").write_text(json.dumps(op.to_json()))


def test_an_environment_with_only_its_servers_is_free(tmp_path: Path) -> None:
    assert _env(tmp_path).occupants() == []


@pytest.mark.parametrize("marker", ["services.json", "overlay-east.yaml", "podrunner-east.json", beside.FILE])
def test_a_deployed_demo_or_a_kept_chaos_run_occupies_it(tmp_path: Path, marker: str) -> None:
    (tmp_path / marker).write_text("{}")
    assert len(_env(tmp_path).occupants()) == 1


def test_running_operators_occupy_it_and_a_stale_record_does_not(tmp_path: Path) -> None:
    operator = processes.spawn("operator", ["sleep", "600"], tmp_path / "operator.log")
    try:
        _record_operator(tmp_path, operator)
        assert _env(tmp_path).occupants() == ["`make operators-up` (east)"]
    finally:
        processes.stop(operator)
    assert _env(tmp_path).occupants() == []
