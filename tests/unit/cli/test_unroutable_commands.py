"""`rabbitsync unroutable` parses its actions (a CLI test: the library-only venv has no rabbitsync[cli])."""

from __future__ import annotations

import pytest

from rabbitsync.cli.main import parser

pytestmark = pytest.mark.unit


def test_the_cli_has_unroutable_list_and_replay() -> None:
    args = parser().parse_args(["unroutable", "replay", "--type", "menu.updated", "--publisher-url", "amqp://a:b@h/"])
    assert (args.command, args.action, args.type, args.publisher_url) == (
        "unroutable",
        "replay",
        "menu.updated",
        ["amqp://a:b@h/"],
    )
    assert parser().parse_args(["unroutable", "list"]).exchange == "rabbitsync.events"
