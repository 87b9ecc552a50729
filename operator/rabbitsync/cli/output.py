"""How results reach the person or the script: a table, JSON or YAML on stdout; progress on stderr.

Tables are for people: aligned columns, and colour only when stdout is a terminal and ``NO_COLOR`` is
unset (https://no-color.org). JSON and YAML are for scripts: the same rows with stable keys, never
coloured. Progress goes to stderr and only to a terminal, so pipes and logs stay clean.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TextIO

import yaml

Format = Literal["table", "json", "yaml"]
FORMATS: tuple[Format, ...] = ("table", "json", "yaml")
Row = Mapping[str, Any]

_COLOURS = {"red": "31", "green": "32", "yellow": "33", "bold": "1"}


@dataclass(frozen=True)
class Column:
    """One table column: its heading and the row key it shows."""

    heading: str
    key: str
    colour: Callable[[Any], str | None] | None = None
    """Picks a colour name for a value (``None``: plain)."""


def help_text(doc: str | None) -> str:
    """A module docstring as ``--help`` shows it: without the reST literal quotes."""
    return (doc or "").replace("``", "")


def colour_wanted(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR")


def paint(text: str, colour: str | None, enabled: bool) -> str:
    if not enabled or colour is None:
        return text
    return f"\033[{_COLOURS[colour]}m{text}\033[0m"


def cell(value: Any) -> str:
    """A value as a table shows it: lists joined, nothing as ``-``."""
    if value is None or value == "":
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def table(rows: Sequence[Row], columns: Sequence[Column], *, colour: bool = False) -> str:
    """Aligned columns with a heading line; colour codes do not count toward the widths."""
    texts = [[cell(row.get(c.key)) for c in columns] for row in rows]
    widths = [max([len(c.heading), *(len(t[i]) for t in texts)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.heading.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    for row, line in zip(rows, texts, strict=True):
        parts = []
        for c, w, text in zip(columns, widths, line, strict=True):
            chosen = c.colour(row.get(c.key)) if c.colour else None
            parts.append(paint(text, chosen, colour) + " " * (w - len(text)))
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def serialise(data: Any, fmt: Format) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, default=str)
    return yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False).rstrip("\n")


def emit(text: str, stream: TextIO | None = None) -> None:
    print(text, file=stream or sys.stdout)


def ready_colour(value: Any) -> str | None:
    return {"True": "green", "False": "red"}.get(str(value), "yellow")


class Progress:
    """``what: done/total`` rewritten in place on a terminal's stderr; silent anywhere else."""

    def __init__(self, what: str, stream: TextIO | None = None) -> None:
        self._what = what
        self._stream = stream or sys.stderr
        self._shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self._stream.isatty():
            return
        self._stream.write(f"\r{self._what}: {done}/{total}")
        self._stream.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            self._stream.write("\r\033[K")
            self._stream.flush()


@contextmanager
def progress(what: str, stream: TextIO | None = None) -> Iterator[Progress]:
    """A :class:`Progress` for the block, its line cleared on the way out (errors included)."""
    shown = Progress(what, stream)
    try:
        yield shown
    finally:
        shown.done()
