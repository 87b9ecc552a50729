"""Header values pika cannot convert decode as text instead of aborting the connection."""

from __future__ import annotations

import math
import struct

import pika.data
import pytest

from rabbitsync.transport import UndecodableValue, undecodable_headers
from rabbitsync.transport.decoding import install

pytestmark = pytest.mark.unit


def table(*fields: tuple[bytes, bytes, bytes]) -> bytes:
    """An AMQP field table of (name, kind, encoded value) fields."""
    body = b"".join(struct.pack(">B", len(name)) + name + kind + value for name, kind, value in fields)
    return struct.pack(">I", len(body)) + body


@pytest.mark.parametrize(
    ("kind", "raw", "text"),
    [
        (b"d", struct.pack(">d", math.nan), "undecodable double: nan"),
        (b"d", struct.pack(">d", -math.inf), "undecodable double: -inf"),
        (b"f", struct.pack(">f", math.inf), "undecodable float: inf"),
        (b"T", struct.pack(">Q", 2**62), f"undecodable timestamp: {2**62}"),
    ],
)
def test_a_value_pika_cannot_convert_becomes_text_and_the_rest_decodes(kind, raw, text):
    install()
    encoded = table((b"odd", kind, raw), (b"next", b"S", struct.pack(">I", 2) + b"ok"))
    decoded, offset = pika.data.decode_table(encoded, 0)
    assert decoded == {"odd": text, "next": "ok"}
    assert isinstance(decoded["odd"], UndecodableValue)
    assert offset == len(encoded)
    # The marker is a str: a copy carrying it encodes as an ordinary string header.
    pieces: list[bytes] = []
    pika.data.encode_table(pieces, decoded)
    assert pika.data.decode_table(b"".join(pieces), 0)[0] == decoded


def test_install_is_idempotent_and_keeps_ordinary_values():
    install()
    install()
    encoded = table((b"n", b"d", struct.pack(">d", 2.0)), (b"t", b"l", struct.pack(">q", -5)))
    assert pika.data.decode_table(encoded, 0)[0] == {"n": 2, "t": -5}


def test_an_unknown_kind_still_fails():
    install()
    with pytest.raises(Exception, match="Z"):
        pika.data.decode_table(table((b"odd", b"Z", b"")), 0)


def test_undecodable_headers_are_named_also_nested():
    odd = UndecodableValue("undecodable double: nan")
    headers = {"fine": 1, "top": odd, "nested": {"deep": odd}, "list": [1, odd]}
    assert undecodable_headers(headers) == ["top", "nested.deep", "list[1]"]
    assert undecodable_headers({"x-death": [{"count": 1}]}) == []
