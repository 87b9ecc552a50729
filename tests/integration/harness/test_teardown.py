"""Teardown of the harness's own broker always succeeds, and a node left behind never breaks the next start.

Each test runs a node of its own (own ports, node name, epmd and cookie), never the shared one on 5672.
A SIGSTOPped node stands for one that cannot answer ``rabbitmqctl shutdown`` in time, as a node
stopping thousands of quorum queues did (issue 10, point 11).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from harness import processes, rabbitmq, rabbitmq_teardown


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[rabbitmq.Broker]:
    broker = rabbitmq.start_own(tmp_path / "rabbitmq", rabbitmq.Options())
    yield broker
    rabbitmq_teardown.kill_node(broker.files.pid_file, broker.ports.epmd if broker.ports else 0)


def _beam(broker: rabbitmq.Broker) -> int:
    [pid] = [pid for pid, cmd in rabbitmq_teardown.node_processes(broker.files.pid_file).items() if cmd == "beam.smp"]
    return pid


def test_stop_succeeds_when_the_node_does_not_answer_shutdown(own_broker: rabbitmq.Broker) -> None:
    os.kill(_beam(own_broker), signal.SIGSTOP)
    started = time.monotonic()
    rabbitmq.stop(own_broker, shutdown_timeout=5)
    took = time.monotonic() - started
    assert rabbitmq_teardown.node_processes(own_broker.files.pid_file) == {}, "the node's processes are gone"
    assert own_broker.ports is not None
    assert not processes.port_open(own_broker.ports.amqp)
    epmd = own_broker.ports.epmd
    # Two CI runs saw this port still open (not alone): say who holds it, so the next one explains itself.
    assert not processes.port_open(epmd), f"the node's own epmd is stopped too: {_listeners(epmd)}"
    assert took < 60, f"teardown took {took:.0f}s"


def _link(fd: Path) -> str:
    try:
        return os.readlink(fd)
    except OSError:  # closed meanwhile
        return ""


def _listeners(port: int) -> list[str]:
    """Who listens on ``port``: command line, pid file in its environment, and the names epmd lists."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            sockets = {_link(fd) for fd in (proc / "fd").iterdir()}
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(f"socket:[{inode}]" in sockets for inode in inodes):
            pid_file = next((e.decode(errors="replace") for e in environ if e.startswith(b"RABBITMQ_PID_FILE=")), "")
            found.append(f"pid {proc.name}: {cmdline.strip()} {pid_file}")
    return [*found, f"epmd names: {rabbitmq_teardown.epmd_names(port)}"]


def test_a_node_left_running_with_queues_does_not_break_the_next_start(own_broker: rabbitmq.Broker) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(own_broker.amqp_url))
    connection.channel().queue_declare("left.behind", durable=True, arguments={"x-queue-type": "quorum"})
    connection.close()
    os.kill(_beam(own_broker), signal.SIGSTOP)  # a run whose teardown never happened

    assert own_broker.ports is not None
    again = rabbitmq.prepare(Path(own_broker.base), own_broker.ports, own_broker.node, rabbitmq.Options(), "cookie")
    rabbitmq.launch(again)
    try:
        queues = rabbitmq.management_get(again.management_url, "/api/queues")
        assert queues == [], "the throwaway node starts empty"
    finally:
        rabbitmq.stop(again)
    assert rabbitmq_teardown.node_processes(again.files.pid_file) == {}
