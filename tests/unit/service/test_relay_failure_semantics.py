"""Issue 10's publishing side, the parts without I/O: lease vs confirm timeout, per-row setbacks,
per-message publish outcomes, and the unroutable-event policy."""

from __future__ import annotations

import pytest

from rabbitsync.django.conf import LEASE_MARGIN, ImproperlyConfigured, resolve
from rabbitsync.django.setbacks import after_refusal, too_large
from rabbitsync.topology.unroutable import unroutable_for
from rabbitsync.transport import BrokerUnreachable, PublishHandle, PublishRejected, Unroutable

pytestmark = pytest.mark.unit


def test_the_default_lease_outlasts_the_worst_case_publish_of_a_batch() -> None:
    settings = resolve({}, {})
    assert settings.relay_lease >= settings.confirm_timeout + LEASE_MARGIN


@pytest.mark.parametrize(("lease", "confirm"), [(30, 30), (30, 29.5), (2, 30)])
def test_a_lease_no_longer_than_a_publish_is_refused_at_start(lease: float, confirm: float) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"RELAY_LEASE .* at least CONFIRM_TIMEOUT"):
        resolve({"RELAY_LEASE": lease, "CONFIRM_TIMEOUT": confirm}, {})


def test_a_short_lease_is_fine_with_a_short_confirm_timeout() -> None:
    assert resolve({}, {"RABBITSYNC_RELAY_LEASE": "12", "RABBITSYNC_CONFIRM_TIMEOUT": "2"}).relay_lease == 12


def test_a_row_too_large_is_parked_at_once_and_one_that_fits_is_not() -> None:
    assert too_large(100, 100) is None
    setback = too_large(101, 100)
    assert setback is not None and setback.park and "101 bytes" in setback.reason


def test_a_refused_row_backs_off_on_its_own_then_is_parked_with_the_reason() -> None:
    refused = PublishRejected("channel closed by the broker: message size 20000000 is larger than max")
    delays = [after_refusal(n, refused, max_attempts=5, max_delay=6.0) for n in range(1, 5)]
    assert [s.delay for s in delays] == [1.0, 2.0, 4.0, 6.0] and not any(s.park for s in delays)
    last = after_refusal(5, refused, max_attempts=5, max_delay=6.0)
    assert last.park and "refused 5 times" in last.reason and "larger than max" in last.reason


def test_a_returned_row_is_retried_forever_never_parked() -> None:
    setback = after_refusal(50, Unroutable("unroutable"), max_attempts=5, max_delay=300.0)
    assert not setback.park and setback.delay == 300.0 and setback.reason.startswith("Unroutable")


def test_a_batch_reports_each_message_so_one_refusal_does_not_fail_the_others() -> None:
    handle = PublishHandle(3)
    handle.settle(1, Unroutable("no queue"))
    handle.settle(0, None)
    assert not handle.done()
    handle.settle(2, None)
    outcomes = handle.outcomes()
    assert outcomes[0] is None and isinstance(outcomes[1], Unroutable) and outcomes[2] is None
    with pytest.raises(Unroutable):  # wait() still raises for callers that want all or nothing
        handle.wait(0)


def test_a_lost_connection_fails_only_the_messages_not_yet_confirmed() -> None:
    handle = PublishHandle(2)
    handle.settle(0, None)
    handle.fail(BrokerUnreachable("connection lost"))
    first, second = handle.outcomes()
    assert first is None and isinstance(second, BrokerUnreachable)


def test_the_unroutable_net_is_one_policy_per_exchange_with_a_fanout_and_a_quorum_queue() -> None:
    spec = unroutable_for("rabbitsync.events")
    assert (spec.alternate_exchange, spec.queue, spec.policy) == ("rabbitsync.events.unroutable",) * 3
    policy = spec.as_policy()
    assert policy.pattern == r"^rabbitsync\.events$" and policy.apply_to == "exchanges"
    assert policy.definition == {"alternate-exchange": "rabbitsync.events.unroutable"}
    assert spec.queue_arguments == {"x-queue-type": "quorum"}
    assert unroutable_for("rabbitsync.events") == spec  # both clusters' operators apply the same


def test_the_sidecar_exports_parked_rows_and_returned_publishes() -> None:
    from prometheus_client import generate_latest

    from rabbitsync.sidecar.metrics import Metrics

    metrics = Metrics()
    metrics.measure_relay(lambda: 2, lambda: 5)
    text = generate_latest(metrics.registry).decode()
    assert "rabbitsync_outbox_parked 2.0" in text and "rabbitsync_outbox_returned 5.0" in text
