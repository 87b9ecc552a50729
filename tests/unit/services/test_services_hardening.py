"""The example services facing hostile input: bodies that are 400s, never 500s; no debug page; a real key."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured

SERVICES = Path(__file__).resolve().parents[3] / "services"
if str(SERVICES) not in sys.path:
    sys.path.insert(0, str(SERVICES))

from common import security  # noqa: E402
from common.http import MAX_JSON_DEPTH, ApiError, read_json  # noqa: E402
from common.validation import Field, Invalid, validate  # noqa: E402

pytestmark = pytest.mark.unit


def refusal(body: bytes) -> str:
    with pytest.raises(ApiError) as caught:
        read_json(SimpleNamespace(body=body))  # type: ignore[arg-type]
    assert caught.value.status == 400
    return caught.value.message


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"[" * 100_000, "nested more than"),
        (b"[" * 100_000 + b"]" * 100_000, "nested more than"),
        (b'{"name": ' + b'{"a": ' * 40 + b"1" + b"}" * 41, "nested more than"),
        (b'{"name": NaN}', "NaN is not a JSON number"),
        (b'{"name": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"name": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"name": "x"} trailing', "not valid JSON: Extra data"),
        (b"", "empty"),
    ],
)
def test_hostile_bodies_are_a_400_that_says_why(body: bytes, says: str) -> None:
    assert says in refusal(body)


def test_nesting_up_to_the_limit_is_fine_and_brackets_in_strings_do_not_count() -> None:
    deep = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert read_json(SimpleNamespace(body=deep)) is not None  # type: ignore[arg-type]
    text = '{"name": "' + "[" * 100 + '\\"' + "{" * 100 + '"}'
    assert read_json(SimpleNamespace(body=text.encode()))["name"].startswith("[[[")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["a\x00b", "\ud800", "x\udfffy"])
@pytest.mark.parametrize("kind", [str, "email"])
def test_text_no_database_can_store_is_refused(value: str, kind: type | str) -> None:
    with pytest.raises(Invalid) as caught:
        validate({"f": value if kind is str else f"{value}@example.com"}, {"f": Field(kind)})
    assert caught.value.errors == {"f": "must be text without NUL characters or unpaired surrogates"}


def test_debug_is_off_unless_asked_for() -> None:
    assert not security.debug({})
    assert not security.debug({"DJANGO_DEBUG": "false"})
    assert not security.debug({"DJANGO_DEBUG": "on please"})
    assert security.debug({"DJANGO_DEBUG": "True"})


def test_a_service_refuses_to_start_without_a_key_unless_debugging() -> None:
    assert security.secret_key({"DJANGO_SECRET_KEY": "from-a-secret"}, debugging=False) == "from-a-secret"
    for environ in ({}, {"DJANGO_SECRET_KEY": ""}, {"DJANGO_SECRET_KEY": security.DEVELOPMENT_KEY}):
        with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY"):
            security.secret_key(environ, debugging=False)
        assert security.secret_key(environ, debugging=True) == security.DEVELOPMENT_KEY


def test_no_service_manifest_turns_the_debug_page_on() -> None:
    manifests = Path(__file__).resolve().parents[3] / "manifests"
    for path in manifests.rglob("*.yaml"):
        text = path.read_text()
        assert "DJANGO_DEBUG" not in text, f"{path} sets DJANGO_DEBUG"
