"""`rabbitsync dead-letters list|replay` against a real broker."""

from __future__ import annotations

import json
from urllib.parse import unquote, urlsplit

import pika
import pytest

from rabbitsync import cli
from rabbitsync.events.headers import PUBLISHER
from rabbitsync.sidecar import routing

ORIGINAL_PUBLISHER = "rabbitsync.west.shop.restaurant"


@pytest.fixture
def queues(broker, uid):
    main, dlq = f"dl.{uid}", f"dl.{uid}.dlq"
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    ch = conn.channel()
    for q in (main, dlq):
        ch.queue_declare(q, durable=True)
    for n in (1, 2):
        headers = {
            routing.REASON: "failed",
            routing.EXCEPTION_TYPE: "builtins.ValueError",
            routing.EXCEPTION_MESSAGE: f"bad row {n}",
            routing.ATTEMPTS: 5,
            routing.QUEUE: main,
            routing.ATTEMPT: 5,
            PUBLISHER: ORIGINAL_PUBLISHER,
        }
        # As the sidecar dead-letters: under its own user, which here is also the user that replays.
        user = unquote(urlsplit(broker.amqp_url).username or "guest")
        props = pika.BasicProperties(
            message_id=f"ev-{n}", type="RESTAURANT_CREATED", headers=headers, delivery_mode=2, user_id=user
        )
        ch.basic_publish("", dlq, b'{"id": "ev"}', props)
    yield ch, main, dlq
    for q in (main, dlq):
        ch.queue_delete(q)
    conn.close()


def _depth(ch, queue: str) -> int:
    return ch.queue_declare(queue, passive=True).method.message_count


def test_list_shows_reasons_and_leaves_messages(broker, queues, capsys):
    ch, _main, dlq = queues
    assert cli.main(["--amqp-url", broker.amqp_url, "dead-letters", "list", dlq]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [d["message_id"] for d in listed] == ["ev-1", "ev-2"]
    assert listed[0]["exception_message"] == "bad row 1" and listed[0]["attempts"] == 5
    assert _depth(ch, dlq) == 2


def test_replay_one_sends_it_back_with_attempts_reset(broker, queues):
    ch, main, dlq = queues
    assert cli.main(["--amqp-url", broker.amqp_url, "dead-letters", "replay", dlq, "--id", "ev-2"]) == 0
    assert _depth(ch, dlq) == 1
    method, props, _ = ch.basic_get(main, auto_ack=True)
    assert method is not None and props.message_id == "ev-2"
    assert props.headers[routing.ATTEMPT] == 1
    assert routing.REASON not in props.headers and routing.EXCEPTION_MESSAGE not in props.headers
    # The replay is published by whoever runs it (the broker checks user_id); the publisher the
    # sidecar verified stays in its header, believed only if the replaying user is the sidecar's own.
    assert props.user_id == unquote(urlsplit(broker.amqp_url).username or "guest")
    assert props.headers[PUBLISHER] == ORIGINAL_PUBLISHER
    method, props, _ = ch.basic_get(dlq, auto_ack=False)
    assert props.message_id == "ev-1"
    ch.basic_nack(method.delivery_tag, requeue=True)


def test_missing_broker_url_is_a_usage_error(monkeypatch):
    monkeypatch.delenv("RABBITSYNC_AMQP_URL", raising=False)
    with pytest.raises(SystemExit) as exc:
        cli.main(["dead-letters", "list", "q"])
    assert exc.value.code == 2


def test_a_message_the_broker_dead_lettered_itself_is_listed_and_replayed(broker, uid, capsys):
    # No x-rabbitsync-* header: the main queue rejected it to its DLX, the broker only added x-death.
    main, dlq = f"dlx.{uid}", f"dlx.{uid}.dlq"
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    ch = conn.channel()
    ch.queue_declare(dlq, durable=True, arguments={"x-queue-type": "quorum"})
    arguments = {"x-queue-type": "quorum", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}
    ch.queue_declare(main, durable=True, arguments=arguments)
    ch.confirm_delivery()  # the get below must find it
    props = pika.BasicProperties(message_id="ev-x", type="ORDER_CREATED", delivery_mode=2)
    ch.basic_publish("", main, b'{"id": "ev-x"}', props)
    method, _props, _body = ch.basic_get(main, auto_ack=False)
    ch.basic_reject(method.delivery_tag, requeue=False)
    try:
        assert _eventually_depth(ch, dlq, 1)
        assert cli.main(["--amqp-url", broker.amqp_url, "dead-letters", "list", dlq]) == 0
        [listed] = json.loads(capsys.readouterr().out)
        assert (listed["reason"], listed["queue"], listed["dead_lettered_by"]) == ("rejected", main, "broker")
        assert cli.main(["--amqp-url", broker.amqp_url, "dead-letters", "replay", dlq, "--id", "nothing"]) == 1
        assert cli.main(["--amqp-url", broker.amqp_url, "dead-letters", "replay", dlq, "--id", "ev-x"]) == 0
        assert _depth(ch, dlq) == 0
        method, props, _ = ch.basic_get(main, auto_ack=True)
        assert props.message_id == "ev-x" and "x-death" not in (props.headers or {})
    finally:
        for q in (main, dlq):
            ch.queue_delete(q)
        conn.close()


def _eventually_depth(ch, queue: str, expected: int) -> bool:
    import time

    for _ in range(50):
        if _depth(ch, queue) == expected:
            return True
        time.sleep(0.1)
    return False
