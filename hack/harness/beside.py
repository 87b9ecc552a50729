"""What a run starts beside the environment, recorded in its state directory so that ``down`` stops it.

``make chaos`` grows the environment's broker into a cluster (two more members), puts a balancer in
front of it and starts a PostgreSQL server. Its ``--keep`` leaves them running with the environment,
and ``make dev-down`` must stop them with it: ``environment.down`` calls ``stop`` first, as the next
chaos run does. The record is ``chaos.json`` (the run that writes it), rewritten whenever one of them
is replaced (a restarted database).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from harness import postgres, processes, rabbitmq

FILE = "chaos.json"


def record(
    directory: Path,
    members: list[rabbitmq.Broker],
    others: list[processes.ProcessRecord],
    databases: list[postgres.Server],
) -> None:
    data = {
        "members": [member.to_json() for member in members],
        "processes": [asdict(p) for p in others],
        "databases": [{**asdict(db), "base": str(db.base)} for db in databases],
    }
    (directory / FILE).write_text(json.dumps(data, indent=2))


def stop(directory: Path) -> None:
    """Stop what ``record`` says was started beside ``directory``'s environment, then forget it."""
    path = directory / FILE
    if not path.exists():
        return
    data = json.loads(path.read_text())
    for member in data.get("members", []):
        rabbitmq.stop(rabbitmq.Broker.from_json(member), shutdown_timeout=10)
    for other in data.get("processes", []):
        processes.stop(processes.ProcessRecord(**other))
    for server in data.get("databases", []):
        process = processes.ProcessRecord(**server.pop("record"))
        postgres.stop(postgres.Server(**{**server, "base": Path(server["base"]), "record": process}))
    path.unlink()
