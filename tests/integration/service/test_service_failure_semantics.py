"""Failure semantics of the consumer (issue 10): outages pause, poison never wedges, hung handlers show.

Through real sidecar processes, a real broker and, for the outage, a real PostgreSQL made
unreachable: the sidecar reaches it through a TCP forwarder (``harness.forward``) that the test
kills (every connection cut, new ones refused) and starts again on the same port.
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pika
import pika.data
import pika.exceptions
import pytest
from conftest import MODES, NAMESPACE, make_spec, user_url, wait_until

import harness
from harness.processes import free_port, port_open
from rabbitsync.conventions import broker_username, routing_key
from rabbitsync.events import CONTENT_TYPE, Origin, encode, new_event
from rabbitsync.sidecar import admission, routing

pytestmark = pytest.mark.integration

MENU = Origin("c2", NAMESPACE, "menu")


def effects(event_id: str) -> int:
    from svcapp.models import Effect

    return Effect.objects.filter(event_id=event_id).count()


def dead_letters(service, spec) -> dict[str, dict[str, object]]:
    """The dead-letter queue's messages (taken off it) by message id: their headers."""
    return {props.message_id: props.headers for props, _body in service.take(spec.dead_letter_queue)}


# -- a database outage ------------------------------------------------------------------------------


class Forwarder:
    """``python -m harness.forward`` from a fixed local port to the database: the sidecar's only way there."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(Path(harness.__file__).resolve().parents[1])}
        rule = f"127.0.0.1:{self.port}=127.0.0.1:{self.target_port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "harness.forward", rule], env=env, stdout=subprocess.DEVNULL
        )
        wait_until(lambda: port_open(self.port), 10, "the forwarder listening")

    def cut(self) -> None:
        """The database is gone for the sidecar: open connections die, new ones are refused."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        with contextlib.suppress(AssertionError, ProcessLookupError):
            self.cut()


@pytest.fixture
def forwarder(postgres: str) -> Iterator[Forwarder]:
    made = Forwarder(urlsplit(postgres).port or 5432)
    made.start()
    yield made
    made.stop()


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.netloc.rsplit(':', 1)[0]}:{port}"))


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("database", ["postgres"], indirect=True)
def test_a_database_outage_longer_than_the_retry_schedule_pauses_and_dead_letters_nothing(
    service, uid, sidecars, database, postgres, forwarder, mode
):
    # Three attempts 0.2 + 0.4 s apart: without the pause, an outage of seconds dead-letters everything.
    spec = service.declare(
        make_spec(
            uid, ["svc.effect"], max_attempts=3, initial_backoff_ms=200, max_backoff_ms=400, batch=MODES[mode].batch
        )
    )
    env = {"DATABASE_URL": through(postgres, forwarder.port), **MODES[mode].env}
    sidecar = sidecars(spec, **env).wait_ready()
    first = new_event(type="svc.effect", origin=MENU, data={}, subject="before")
    service.send_event(first)
    wait_until(lambda: effects(first.id) == 1, 15, "an event applied before the outage")

    forwarder.cut()
    during = [new_event(type="svc.effect", origin=MENU, data={}, subject=f"during-{n}") for n in range(20)]
    for event in during:
        service.send_event(event)
    wait_until(lambda: sidecar.metric("rabbitsync_consumer_paused") == 1, 15, "consumption paused")
    time.sleep(6)  # ten times the whole retry schedule
    status, body = sidecar.get("/healthz")
    assert (status, "paused" in body) == (200, True), "a database outage must not restart the sidecar"
    assert service.depth(spec.dead_letter_queue) == 0
    assert sidecar.metric("rabbitsync_retried_total") == 0
    assert sidecar.metric("rabbitsync_infrastructure_errors_total") >= 1

    forwarder.start()
    wait_until(lambda: all(effects(e.id) == 1 for e in during), 30, "every event applied once the database is back")
    time.sleep(1)  # a late duplicate or dead letter would land in this window
    assert all(effects(e.id) == 1 for e in [first, *during])
    assert service.depth(spec.dead_letter_queue) == 0
    assert sidecar.metric("rabbitsync_retried_total") == 0
    assert sidecar.metric("rabbitsync_consumer_paused") == 0
    assert sidecar.get("/healthz") == (200, "ok\n")


# -- poison -----------------------------------------------------------------------------------------


class _RawTimestamp(int):
    """A ``T`` header value beyond what ``datetime`` can hold."""


def _publish_with_headers(service, event, headers: dict[str, object]) -> None:
    """Publish ``event`` as its genuine publisher, through the exchange, with odd ``headers``."""
    encode_value = pika.data.encode_value

    def raw_values(pieces: list[bytes], value: object) -> int:
        # pika sends neither doubles nor such timestamps by itself; any other client can.
        if isinstance(value, _RawTimestamp):
            pieces.append(struct.pack(">cQ", b"T", value))
            return 9
        if isinstance(value, float):
            pieces.append(struct.pack(">cd", b"d", value))
            return 9
        return encode_value(pieces, value)

    url = user_url(service.identities, event.origin)
    connection = pika.BlockingConnection(pika.URLParameters(url))
    with contextlib.ExitStack() as closing:
        closing.callback(lambda: connection.is_open and connection.close())
        channel = connection.channel()
        channel.confirm_delivery()
        properties = pika.BasicProperties(
            content_type=CONTENT_TYPE,
            delivery_mode=2,
            message_id=event.id,
            user_id=broker_username(*event.origin),
            headers=headers,
        )
        pika.data.encode_value = raw_values
        try:
            channel.basic_publish(service.exchange, routing_key(NAMESPACE, event.type), encode(event), properties)
        finally:
            pika.data.encode_value = encode_value


def test_headers_pika_cannot_decode_are_dead_lettered_and_consumption_goes_on(service, uid, sidecars):
    """Without :mod:`rabbitsync.transport.decoding`, each of these aborts the sidecar's connection inside
    pika, and the message comes first again on the next one, forever. RabbitMQ 3.10 refuses NaN and
    ±Inf at publish (541 INTERNAL_ERROR: Erlang has no such floats); whatever it accepts must end in
    the dead-letter queue with the reason, and the connection must survive it."""
    spec = service.declare(make_spec(uid, ["svc.effect"]))
    sidecar = sidecars(spec).wait_ready()
    odd = {"far future": _RawTimestamp(2**62), "nan": math.nan, "inf": math.inf, "-inf": -math.inf}
    poisoned = {}
    for name, value in odd.items():
        event = new_event(type="svc.effect", origin=MENU, data={}, subject=name)
        try:
            _publish_with_headers(service, event, {"x-odd": value})
        except pika.exceptions.ConnectionClosedByBroker as refused:
            assert refused.reply_code == 541 and isinstance(value, float)
            continue
        poisoned[event.id] = name
    assert "far future" in poisoned.values()
    after = new_event(type="svc.effect", origin=MENU, data={}, subject="behind the poison")
    service.send_event(after)

    wait_until(lambda: effects(after.id) == 1, 15, "the event behind the poison applied")
    wait_until(lambda: service.depth(spec.dead_letter_queue) == len(poisoned), 10, "every poison dead-lettered")
    dead = dead_letters(service, spec)
    assert set(dead) == set(poisoned)
    for headers in dead.values():
        assert headers[routing.REASON] == admission.UNDECODABLE_HEADER
        assert str(headers["x-odd"]).startswith("undecodable ")
    assert all(effects(event_id) == 0 for event_id in poisoned)
    assert sidecar.metric("rabbitsync_reconnects_total") == 0, "no connection was lost to the poison"


def test_a_body_above_the_cap_is_dead_lettered_unread(service, uid, sidecars):
    spec = service.declare(make_spec(uid, ["svc.effect"]))
    sidecar = sidecars(spec, RABBITSYNC_MAX_BODY_BYTES="4096").wait_ready()
    big = new_event(type="svc.effect", origin=MENU, data={"padding": "x" * 5000}, subject="big")
    small = new_event(type="svc.effect", origin=MENU, data={}, subject="small")
    service.send_event(big)
    service.send_event(small)
    wait_until(lambda: effects(small.id) == 1, 15, "the small event applied")
    wait_until(lambda: service.depth(spec.dead_letter_queue) == 1, 10, "the big one dead-lettered")
    [(props, body)] = service.take(spec.dead_letter_queue)
    assert props.message_id == big.id and body == encode(big)
    assert props.headers[routing.REASON] == admission.TOO_LARGE
    assert "above the limit of 4096" in str(props.headers[routing.EXCEPTION_MESSAGE])
    assert effects(big.id) == 0
    assert sidecar.metric("rabbitsync_retried_total") == 0


@pytest.mark.parametrize("raised", ["SystemExit", "KeyboardInterrupt", "GeneratorExit"])
def test_a_base_exception_raised_by_a_handler_is_that_handlers_failure(service, uid, sidecars, raised):
    spec = service.declare(make_spec(uid, ["svc.exit", "svc.effect"], max_attempts=2, initial_backoff_ms=100))
    sidecar = sidecars(spec).wait_ready()
    exiting = new_event(type="svc.exit", origin=MENU, data={"raise": raised}, subject="exits")
    service.send_event(exiting)
    wait_until(lambda: service.depth(spec.dead_letter_queue) == 1, 15, "the failing event dead-lettered")
    after = new_event(type="svc.effect", origin=MENU, data={}, subject="after")
    service.send_event(after)
    wait_until(lambda: effects(after.id) == 1, 15, "the sidecar still consuming")
    [headers] = dead_letters(service, spec).values()
    assert headers[routing.REASON] == routing.FAILED and headers[routing.ATTEMPTS] == 2
    assert raised in str(headers[routing.EXCEPTION_MESSAGE])
    assert sidecar.process is not None and sidecar.process.poll() is None
    assert sidecar.metric("rabbitsync_retried_total") == 1


# -- a hung handler ---------------------------------------------------------------------------------


def test_a_handler_past_its_deadline_fails_liveness_and_shows_its_age(service, uid, sidecars):
    spec = service.declare(make_spec(uid, ["svc.effect"]))
    sidecar = sidecars(spec, RABBITSYNC_HANDLER_DEADLINE="2").wait_ready()
    slow = new_event(type="svc.effect", origin=MENU, data={"sleep": 6}, subject="hung")
    service.send_event(slow)
    wait_until(lambda: sidecar.get("/healthz")[0] == 503, 10, "liveness failing past the deadline")
    assert "past its deadline" in sidecar.get("/healthz")[1]
    assert sidecar.metric("rabbitsync_handler_in_flight_seconds") > 2
    wait_until(lambda: effects(slow.id) == 1, 15, "the slow handler done")
    # The effect commits inside the handler, a moment before the sidecar hears the handler returned.
    wait_until(lambda: sidecar.get("/healthz") == (200, "ok\n"), 5, "liveness back once the handler returned")
    assert sidecar.metric("rabbitsync_handler_in_flight_seconds") == 0


# -- one channel per queue --------------------------------------------------------------------------


def test_a_missing_queue_stops_its_subscription_only_and_is_retried(service, uid, sidecars, broker):
    kept = service.declare(make_spec(uid, ["svc.effect"], name="kept"))
    lost = make_spec(uid, ["svc.flaky"], name="lost")  # not declared yet: the operator is late
    sidecar = sidecars(kept, lost)
    first = new_event(type="svc.effect", origin=MENU, data={}, subject="first")
    service.send_event(first)
    wait_until(lambda: effects(first.id) == 1, 20, "the existing queue consumed beside the missing one")
    assert not sidecar.ready()

    service.declare(lost)
    wait_until(sidecar.ready, 20, "the missing queue consumed once it exists")
    with pika.BlockingConnection(pika.URLParameters(broker.amqp_url)) as connection:
        connection.channel().queue_delete(kept.queue)
    second = new_event(type="svc.flaky", origin=MENU, data={"fail_times": 0}, subject="second")
    service.send_event(second)
    wait_until(lambda: effects(second.id) == 1, 20, "the other queue consumed after a deletion")
    wait_until(lambda: not sidecar.ready(), 10, "the deleted queue's subscription down")
    assert "queue not consumed, trying again later" in sidecar.logs()
    assert sidecar.metric("rabbitsync_reconnects_total") == 0, "no reconnect: only that channel stopped"
    assert sidecar.process is not None and sidecar.process.poll() is None
