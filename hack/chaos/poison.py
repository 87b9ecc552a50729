"""Poison messages, published into the events exchange as a real service would: with its own broker user.

Each one is something no consumer can or should apply, so the contract is that it ends in a
dead-letter queue with a reason and that no consumer stops on it:

- ``invalid-json``: a body that is not JSON at all;
- ``nan-header``: a well-formed event whose AMQP headers hold a double NaN (pika cannot decode it;
  RabbitMQ's own parser may refuse it first, which the suite reports as refused by the broker);
- ``bad-timestamp-header``: a well-formed event with a header timestamp of 2^62 s, past any
  ``datetime`` (pika cannot decode it either, and the broker passes it on as a plain 64-bit value);
- ``huge-body``: a well-formed event of 10 MB;
- ``forged-version``: a well-formed event claiming version 2^63-1, which would win every
  last-writer-wins comparison for ever after.

The publisher is east's ``restaurant`` service (its credentials from its Secret, ``user_id`` set as
the library does), so the trust checks pass: what is tested is what happens to poison from inside.
Every message has a fresh subject, so an applied poison shows up as a row no write created.
"""

from __future__ import annotations

import base64
import json
import struct
import urllib.parse
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pika
import pika.data

from harness import operators

PUBLISHER = ("east", "restaurant")
EXCHANGE = "rabbitsync.events"
EVENT_TYPE = "RESTAURANT_UPDATED"
HUGE_BYTES = 10 * 1024 * 1024
FORGED_VERSION = 2**63 - 1


@dataclass(frozen=True)
class Poison:
    what: str
    message_id: str
    subject: str
    body: bytes
    headers: dict[str, object]


def _event(message_id: str, subject: str, version: int, padding: int = 0) -> bytes:
    cluster, service = PUBLISHER
    data: dict[str, object] = {"id": subject, "name": "poison", "email": "", "address": "", "cuisine": ""}
    if padding:
        data["address"] = "x" * padding
    event = {
        "specversion": "1.0",
        "id": message_id,
        "type": EVENT_TYPE,
        "source": f"/clusters/{cluster}/namespaces/foodapp/services/{service}",
        "subject": subject,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": data,
        "rabbitsyncversion": version,
    }
    return json.dumps(event).encode()


class OutOfRangeTimestamp(int):
    """A header timestamp (AMQP ``T``) no ``datetime`` can hold: pika's decoder raises on it."""


KINDS = ("invalid-json", "nan-header", "bad-timestamp-header", "huge-body", "forged-version")


def _headers(what: str) -> dict[str, object]:
    if what == "nan-header":
        return {"x-chaos-nan": float("nan")}
    if what == "bad-timestamp-header":
        return {"x-chaos-time": OutOfRangeTimestamp(2**62)}
    return {}


def batch() -> list[Poison]:
    """One of each kind, with fresh ids and subjects."""
    made = []
    for what in KINDS:
        message_id, subject = f"chaos-poison-{what}-{uuid.uuid4().hex[:12]}", str(uuid.uuid4())
        version = FORGED_VERSION if what == "forged-version" else 1
        padding = HUGE_BYTES if what == "huge-body" else 0
        body = (
            b'{"specversion": "1.0", "id": '
            if what == "invalid-json"
            else _event(message_id, subject, version, padding)
        )
        made.append(Poison(what, message_id, subject, body, _headers(what)))
    return made


def publisher_uri(kubeconfig: Path) -> str:
    _, service = PUBLISHER
    secret = json.loads(
        operators.kubectl(kubeconfig, "get", "secret", f"rabbitsync-{service}", "-n", "foodapp", "-o", "json")
    )
    return base64.b64decode(secret["data"]["uri"]).decode()


def _encode_value(pieces: list[bytes], value: object) -> int:
    """pika's header encoder, plus the AMQP double it lacks: a NaN must reach the wire as another client sends it."""
    if isinstance(value, float):
        pieces.append(struct.pack(">cd", b"d", value))
        return 9
    if isinstance(value, OutOfRangeTimestamp):
        pieces.append(struct.pack(">cQ", b"T", int(value)))
        return 9
    return int(_pika_encode_value(pieces, value))


_pika_encode_value = pika.data.encode_value


def publish(uri: str, poisons: list[Poison]) -> None:
    """Publish with publisher confirms: each one is on the broker when this returns."""
    user = urllib.parse.unquote(urllib.parse.urlsplit(uri).username or "")
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    pika.data.encode_value = _encode_value
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for poison in poisons:
            properties = pika.BasicProperties(
                message_id=poison.message_id,
                type=EVENT_TYPE,
                user_id=user,
                content_type="application/cloudevents+json",
                delivery_mode=2,
                headers=poison.headers or None,
            )
            channel.basic_publish(EXCHANGE, f"foodapp.{EVENT_TYPE}", poison.body, properties, mandatory=False)
    finally:
        pika.data.encode_value = _pika_encode_value
        connection.close()
