"""A pytest plugin for test_markers: writes every collected test's marker names, as JSON, to $MARKER_REPORT.

Loaded with ``-p marker_report`` in a ``--collect-only`` subprocess, after the conftest has marked the tests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    report = {item.nodeid: sorted({mark.name for mark in item.iter_markers()}) for item in session.items}
    Path(os.environ["MARKER_REPORT"]).write_text(json.dumps(report))
