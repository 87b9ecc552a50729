"""The harness's RabbitMQ nodes without a broker: ports, config, environment, chroot and debootstrap command lines."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from harness import debian_root, rabbitmq
from harness.rabbitmq_config import (
    NodeFiles,
    Ports,
    TLSFiles,
    allocate_ports,
    node_env,
    node_name,
    own_ports,
    render_advanced_config,
    render_config,
)


def test_allocated_ports_are_distinct_free_and_below_the_ephemeral_range():
    ports = allocate_ports(6)
    assert len(set(ports)) == 6
    assert all(20000 <= p < 32000 for p in ports)
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_allocation_skips_ports_in_use():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        busy = held.getsockname()[1]
        assert allocate_ports(1, range(busy, busy + 2)) == [busy + 1]
        with pytest.raises(RuntimeError, match="fewer than 1 free ports"):
            allocate_ports(1, range(busy, busy + 1))


def test_cluster_nodes_share_the_epmd_port_they_are_given():
    a, b = own_ports(tls=False, epmd=24369), own_ports(tls=True, epmd=24369)
    assert a.epmd == b.epmd == 24369
    assert a.amqps == 0 and b.amqps and b.management_tls
    assert node_name(a) != node_name(b)
    assert node_name(a) == f"rabbitsync-{a.amqp}@localhost"


def test_plain_config_listens_on_loopback_only():
    config = render_config(Ports.default())
    assert "listeners.tcp.default = 127.0.0.1:5672\n" in config
    assert "management.tcp.port = 15672\n" in config
    assert "ssl" not in config


def test_tls_config_adds_amqps_and_https_management_with_the_files():
    ports = Ports(amqp=1, management=2, dist=3, epmd=4).with_tls(5, 6)
    tls = TLSFiles(ca_cert=Path("/t/ca.crt"), cert=Path("/t/server.crt"), key=Path("/t/server.key"))
    config = render_config(ports, tls)
    assert "listeners.ssl.default = 127.0.0.1:5\n" in config
    assert "ssl_options.certfile = /t/server.crt\n" in config
    assert "management.ssl.port = 6\n" in config
    assert "management.ssl.keyfile = /t/server.key\n" in config
    with pytest.raises(ValueError, match="amqps port"):
        render_config(Ports.default(), tls)


def test_default_node_keeps_the_standard_epmd_and_others_get_their_own():
    files = NodeFiles(Path("/s/rabbitmq"))
    default = node_env(files, "rabbitsync@localhost", Ports.default(), Path("/root"))
    assert "ERL_EPMD_PORT" not in default and default["HOME"] == "/root"
    assert default["RABBITMQ_PID_FILE"] == "/s/rabbitmq/rabbitmq.pid"
    own = node_env(files, "n@localhost", Ports(amqp=1, management=2, dist=3, epmd=4), files.home)
    assert own["ERL_EPMD_PORT"] == "4" and own["RABBITMQ_DIST_PORT"] == "3"
    assert own["HOME"] == "/s/rabbitmq/home"


def test_options_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("RABBITSYNC_RABBITMQ", raising=False)
    monkeypatch.delenv("RABBITSYNC_BROKER_TLS", raising=False)
    monkeypatch.delenv("RABBITSYNC_BROKER_PRIVATE", raising=False)
    monkeypatch.delenv("RABBITSYNC_BROKER_DLX_CONFIRM_TIMEOUT", raising=False)
    assert rabbitmq.Options.from_env().shared
    monkeypatch.setenv("RABBITSYNC_BROKER_PRIVATE", "1")
    assert not rabbitmq.Options.from_env().shared
    monkeypatch.delenv("RABBITSYNC_BROKER_PRIVATE")
    monkeypatch.setenv("RABBITSYNC_RABBITMQ", "4.0")
    monkeypatch.setenv("RABBITSYNC_BROKER_TLS", "1")
    assert rabbitmq.Options.from_env() == rabbitmq.Options(version="4.0", tls=True)
    monkeypatch.setenv("RABBITSYNC_RABBITMQ", "3.13")
    with pytest.raises(ValueError, match=r"3\.13"):
        rabbitmq.Options.from_env()


def test_a_dead_letter_confirm_timeout_makes_a_node_of_our_own_with_it_in_advanced_config(monkeypatch):
    for name in ("RABBITSYNC_RABBITMQ", "RABBITSYNC_BROKER_TLS", "RABBITSYNC_BROKER_PRIVATE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RABBITSYNC_BROKER_DLX_CONFIRM_TIMEOUT", "30")
    options = rabbitmq.Options.from_env()
    assert options.dead_letter_confirm_timeout_s == 30.0 and not options.shared
    assert render_advanced_config(30.0) == "[{rabbit, [{dead_letter_worker_publisher_confirm_timeout, 30000}]}].\n"
    assert render_advanced_config() == "[].\n"
    env = node_env(NodeFiles(Path("/s/rabbitmq")), "n@localhost", Ports.default(), Path("/root"))
    assert env["RABBITMQ_ADVANCED_CONFIG_FILE"] == "/s/rabbitmq/advanced.config"
    for wrong in ("soon", "-5", "0", "nan"):
        monkeypatch.setenv("RABBITSYNC_BROKER_DLX_CONFIRM_TIMEOUT", wrong)
        reason = f"RABBITSYNC_BROKER_DLX_CONFIRM_TIMEOUT='{wrong}': seconds, a number above 0"
        with pytest.raises(ValueError, match=reason):
            rabbitmq.Options.from_env()


def test_broker_record_round_trips_through_json_and_reads_old_records():
    broker = rabbitmq.Broker(
        amqp_url="amqp://g:g@127.0.0.1:1/",
        management_url="http://g:g@127.0.0.1:2",
        node="n@localhost",
        owned=True,
        base="/b",
        version="4.0",
        ports=Ports(amqp=1, management=2, dist=3, epmd=4),
        ca_pem="PEM",
    )
    assert rabbitmq.Broker.from_json(broker.to_json()) == broker
    old = {"amqp_url": "a", "management_url": "m", "node": "n", "owned": False, "base": "/b"}
    assert rabbitmq.Broker.from_json(old).ports is None
    assert rabbitmq.serves(broker, rabbitmq.Options(version="4.0"))
    assert not rabbitmq.serves(broker, rabbitmq.Options(version="4.0", tls=True))
    assert rabbitmq.serves(broker, rabbitmq.Options(version="4.0", private=True))
    shared = dataclasses.replace(broker, ports=Ports.default())
    assert not rabbitmq.serves(shared, rabbitmq.Options(version="4.0", private=True))


def test_mirror_is_read_from_deb822_and_one_line_sources():
    deb822 = "Types: deb\n# URIs: http://old/debian\nURIs: http://mirror.example/debian/\nSuites: bookworm\n"
    assert debian_root.mirror_from_sources([deb822]) == "http://mirror.example/debian"
    one_line = "deb [arch=amd64] http://m.example/debian bookworm main\n"
    assert debian_root.mirror_from_sources(["deb https://other/apt x main\n", one_line]) == "http://m.example/debian"
    assert debian_root.mirror_from_sources(["URIs: http://deb.example/debian-security\n"]) is None


def test_chroot_command_mounts_in_a_private_namespace_and_binds_paths_at_the_same_place():
    argv = debian_root.chroot_command(Path("/cache/root"), ["/usr/bin/x", "a b"], binds=[Path("/state/n1")])
    assert argv[:5] == ["unshare", "--mount", "--propagation", "private", "--"]
    script = argv[7]
    assert "mount -t proc proc /cache/root/proc" in script
    assert "mount --bind /state/n1 /cache/root/state/n1" in script
    assert script.endswith('exec chroot /cache/root "$@"')
    assert argv[8:] == ["sh", "/usr/bin/x", "a b"]


def test_debootstrap_command_is_minbase_with_the_packages():
    argv = debian_root.debootstrap_command("trixie", Path("/d"), ["rabbitmq-server"], "http://m/debian")
    assert argv == ["debootstrap", "--variant=minbase", "--include=rabbitmq-server", "trixie", "/d", "http://m/debian"]


def _booting(tmp_path: Path) -> rabbitmq.Broker:
    return rabbitmq.Broker("amqp://127.0.0.1:1/", "http://127.0.0.1:2", "n@localhost", True, str(tmp_path))


def test_a_node_whose_vm_exits_at_boot_is_reported_at_once_not_after_the_boot_timeout(monkeypatch, tmp_path):
    # rabbitmqctl wait kept waiting 300 s for the pid file of a cluster member that had crashed at boot.
    monkeypatch.setattr(rabbitmq, "ready", lambda _broker: False)
    monkeypatch.setattr(rabbitmq.rabbitmq_teardown, "node_processes", lambda _pid_file: {})
    monkeypatch.setattr(rabbitmq.polling.time, "sleep", lambda _s: None)
    with pytest.raises(rabbitmq.NodeDiedAtBoot, match="n@localhost exited while booting"):
        rabbitmq._wait_booted(_booting(tmp_path))


def test_a_booting_node_is_waited_for_while_its_vm_runs(monkeypatch, tmp_path):
    answers = iter([False, False, False, False, True])
    monkeypatch.setattr(rabbitmq, "ready", lambda _broker: next(answers))
    monkeypatch.setattr(rabbitmq.rabbitmq_teardown, "node_processes", lambda _pid_file: {7: "beam.smp"})
    monkeypatch.setattr(rabbitmq.polling.time, "sleep", lambda _s: None)
    rabbitmq._wait_booted(_booting(tmp_path))
