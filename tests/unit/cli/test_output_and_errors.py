"""Output formats, argument parsing, exit codes and the one-line errors (no traceback, no password)."""

from __future__ import annotations

import io
import json

import pytest
import yaml
from clifakes import FakeCluster, obj, ready
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from rabbitsync.cli import dlq, failures, main, output, status
from rabbitsync.cli.kube import Target, syncbroker_endpoints, targets
from rabbitsync.cli.main import parser
from rabbitsync.transport import AccessRefused, BrokerEndpoint, BrokerUnreachable


def test_tables_align_and_colour_only_when_asked():
    rows = [{"a": "x", "b": None}, {"a": "longer", "b": ["p", "q"]}]
    columns = [output.Column("A", "a"), output.Column("B", "b", lambda v: "red")]
    assert output.table(rows, columns).splitlines() == ["A       B", "x       -", "longer  p,q"]
    assert "\033[31m" in output.table(rows, columns, colour=True)
    assert not output.colour_wanted(io.StringIO())


def test_json_and_yaml_carry_the_same_rows():
    rows = [{"a": 1, "b": ["x"]}]
    assert json.loads(output.serialise(rows, "json")) == rows == yaml.safe_load(output.serialise(rows, "yaml"))


def test_clusters_pair_up_from_the_repeated_flags():
    assert targets([], []) == [Target(None, None)]
    assert targets(["a", "b"], []) == [Target("a", None), Target("b", None)]
    assert targets([], ["east", "west"]) == [Target(None, "east"), Target(None, "west")]
    assert targets(["a", "b"], ["east", "west"]) == [Target("a", "east"), Target("b", "west")]
    assert targets(["a"], ["east", "west"]) == [Target("a", "east"), Target("a", "west")]
    with pytest.raises(failures.UsageError):
        targets(["a", "b", "c"], ["east", "west"])


def test_version_and_usage_errors_exit_like_argparse(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("rabbitsync ")
    with pytest.raises(SystemExit) as done:
        main(["status", "-o", "xml"])
    assert done.value.code == 2


def test_the_output_format_may_come_before_or_after_the_command():
    parsed = parser().parse_args(["-o", "json", "status"])
    assert parsed.fmt == "json"
    parsed = parser().parse_args(["status", "-o", "yaml"])
    assert parsed.fmt == "yaml"


@pytest.mark.parametrize(
    ("error", "code", "expected"),
    [
        (BrokerUnreachable("broker unreachable: amqp://u:s3cret@h:5672/ refused"), 2, "broker: broker unreachable"),
        (AccessRefused("403"), 2, "broker: 403"),
        (ApiException(status=403, reason="Forbidden"), 2, "Kubernetes API: 403 Forbidden"),
        (ConfigException("Invalid kube-config file"), 2, "kubeconfig: Invalid"),
        (failures.NothingMatched("no dead letter with id x"), 1, "no dead letter"),
        (KeyboardInterrupt(), 130, "interrupted"),
        (RuntimeError("http://a:b@c"), 2, "unexpected RuntimeError"),
    ],
)
def test_every_failure_is_one_line_without_a_password(error, code, expected):
    line, exit_code = failures.explain(error)
    assert exit_code == code and line.startswith(expected)
    assert "\n" not in line and "s3cret" not in line and ":b@" not in line


def test_an_empty_error_borrows_its_causes_text():
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as cause:
            raise BrokerUnreachable() from cause
    except BrokerUnreachable as e:
        assert "Connection refused" in failures.explain(e)[0]


def test_an_api_error_body_is_read_for_its_message():
    error = ApiException(status=404, reason="Not Found")
    error.body = json.dumps({"message": 'syncsubscriptions.rabbitsync.io "x" not found'})
    assert failures.explain(error)[0] == 'Kubernetes API: 404 Not Found: syncsubscriptions.rabbitsync.io "x" not found'


def test_main_prints_one_line_and_exits_2_for_a_missing_kubeconfig(capsys, tmp_path):
    assert main(["--kubeconfig", str(tmp_path / "none"), "status"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rabbitsync: error: --kubeconfig") and "Traceback" not in err


def test_status_puts_problems_first_and_exits_1_when_one_is_not_ready():
    east = FakeCluster(
        "east", [obj("ns", "a", "a", ["x"], **ready()), obj("ns", "b", "b", ["x", "y"], **ready("False", "NoConsumer"))]
    )
    west = FakeCluster("west", [obj("ns", "a", "a", ["x"], queueDepth=3, **ready())])
    found = status.collect([east, west], None)
    assert [(r.cluster, r.name, r.is_ready) for r in found] == [
        ("east", "b", False),
        ("east", "a", True),
        ("west", "a", True),
    ]
    rows = json.loads(status.render(found, "json", False))
    assert rows[0]["reason"] == "NoConsumer" and rows[2]["queueDepth"] == 3
    args = parser().parse_args(["status"])
    args.fmt, args.stdout = "table", io.StringIO()
    assert status.run(args, [east, west]) == 1
    assert status.run(args, [west]) == 0
    assert args.stdout.getvalue().splitlines()[0].startswith("CLUSTER")


def test_dlq_finds_the_subscription_in_the_one_cluster_that_has_it():
    east = FakeCluster("east", [obj("ns", "s", "s", ["x"], deadLetterQueue="rabbitsync.east.ns.s.dlq")])
    west = FakeCluster("west", [obj("ns", "s", "s", ["x"], deadLetterQueue="rabbitsync.west.ns.s.dlq")])
    parse = parser().parse_args
    args = parse(["dlq", "list", "ns/s", "--cluster", "west"])
    args.amqp_url = args.management_url = None
    assert dlq.locate(args, [east, west]).queue.queue == "rabbitsync.west.ns.s.dlq"
    args.cluster = None
    with pytest.raises(failures.UsageError, match="pick one with --cluster"):
        dlq.locate(args, [east, west])
    args.subscription = "ns/missing"
    with pytest.raises(failures.NothingMatched):
        dlq.locate(args, [east, west])
    args.subscription = "no-slash"
    with pytest.raises(failures.UsageError):
        dlq.locate(args, [east])


def test_replay_needs_to_be_told_what():
    parse = parser().parse_args
    with pytest.raises(failures.UsageError):
        dlq.selector(parse(["dlq", "replay", "ns/s"]))
    with pytest.raises(failures.UsageError):
        dlq.selector(parse(["dlq", "replay", "ns/s", "--all", "--type", "t"]))
    assert dlq.selector(parse(["dlq", "replay", "ns/s", "--type", "t"]))


def test_a_cluster_failure_names_the_cluster_and_keeps_the_exit_code():
    error = failures.InCluster("west", ApiException(status=401, reason="Unauthorized"))
    assert failures.explain(error) == ("west: Kubernetes API: 401 Unauthorized", 2)


def test_a_replay_report_says_what_was_missing_and_exits_1(capsys):
    from rabbitsync.deadletters import PassResult
    from rabbitsync.deadletters.letters import DeadLetter

    letter = DeadLetter("e1", "t", None, None, "poison", 1, None, None, "q", "sidecar", None)
    done = PassResult(letters=[letter], replayed=[letter])
    assert dlq.report_replay(done, "q.dlq", ["e1"]) == 0
    assert capsys.readouterr().out == "replayed 1 dead letter(s) from q.dlq to q\n"
    assert dlq.report_replay(done, "q.dlq", ["e1", "e9"], "json") == 1
    assert json.loads(capsys.readouterr().out)["missing"] == ["e9"]
    assert dlq.report_replay(PassResult(), "q.dlq", []) == 1  # nothing replayed: nothing matched


def test_nothing_found_exits_1_in_status_topology_and_unroutable_filters(monkeypatch):
    """Issue 12: "a nonzero code when nothing matched", for every command that can match nothing."""
    from rabbitsync.cli import topology, unroutable
    from rabbitsync.deadletters.unroutable import Entry, Outcome

    empty = FakeCluster("east", [obj("other", "a", "a", ["x"], **ready())])
    args = parser().parse_args(["status", "-n", "foodapp"])
    args.fmt, args.stdout = "table", io.StringIO()
    assert status.run(args, [empty]) == 1 and "no SyncSubscriptions" in args.stdout.getvalue()
    args = parser().parse_args(["--management-url", "http://broker.invalid:1/", "topology", "-n", "foodapp"])
    args.fmt, args.stdout, args.amqp_url = "table", io.StringIO(), None
    monkeypatch.setattr(topology, "broker_queues", lambda _args, _clusters: [])
    assert topology.run(args, [empty]) == 1

    seen: list[tuple[int, int]] = []

    class Queue:
        queue = "rabbitsync.events.unroutable"

        def look(self, progress):
            progress(1, 1)
            seen.append((1, 1))
            return Outcome(entries=[Entry("id-1", "A", "p", "ns.A")])

        def replay(self, select, publishers, progress):
            return Outcome(entries=[Entry("id-1", "A", "p", "ns.A")])

    monkeypatch.setattr(unroutable, "_queue", lambda _args: Queue())
    for argv, code in (
        (["unroutable", "list"], 0),
        (["unroutable", "list", "--type", "A"], 0),
        (["unroutable", "list", "--type", "B"], 1),
        (["unroutable", "replay", "--type", "B"], 1),
    ):
        args = parser().parse_args(argv)
        args.fmt, args.stdout = "json", io.StringIO()
        assert unroutable.run(args, []) == code, argv
    assert seen  # progress reaches the pass (shown only on a terminal's stderr)


def test_brokers_are_found_once_each_and_an_unreadable_one_is_a_note_not_a_failure(capsys):
    shared = BrokerEndpoint("amqp://u:p@broker.example/sync")
    east = FakeCluster(
        "east",
        brokers={
            ("", "shared"): shared,
            ("team-a", "default"): failures.InCluster("east", ApiException(status=403, reason="Forbidden")),
        },
    )
    west = FakeCluster("west", brokers={("", "shared"): BrokerEndpoint("amqp://other:q@broker.example/sync")})

    found = syncbroker_endpoints([east, west], lambda e: (e.host, e.vhost))

    assert found == [shared]
    note = capsys.readouterr().err
    assert note.startswith("rabbitsync: note: SyncBroker team-a/default left out: east: Kubernetes API:"), note
    assert "p@" not in note
