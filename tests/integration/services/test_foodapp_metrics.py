"""The web process's /metrics (outbox backlog, oldest unsent age) and its JSON log lines, as the pods run it."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

pytestmark = pytest.mark.integration


def _metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    return {
        name: float(value)
        for name, value in (line.split(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    }


def test_the_web_process_exposes_its_outbox_backlog_and_oldest_unsent_age(run_service):
    # No broker URL: nothing relays, so what is published stays unsent, as during a broker outage.
    svc = run_service("restaurant")
    empty = _metrics(svc.url)
    assert (empty["rabbitsync_outbox_backlog"], empty["rabbitsync_outbox_oldest_unsent_age_seconds"]) == (0.0, 0.0)

    for name in ("One", "Two"):
        assert svc.call("POST", "/api/restaurants/", {"name": name, "email": "a@b.example"}).status == 201
    time.sleep(1.1)
    found = _metrics(svc.url)
    assert found["rabbitsync_outbox_backlog"] == 2.0
    assert 1.0 <= found["rabbitsync_outbox_oldest_unsent_age_seconds"] < 60


def test_the_web_process_logs_json_lines_like_the_sidecar(run_service):
    svc = run_service("restaurant")
    assert svc.call("GET", "/api/restaurants/").status == 200
    request = _logged_request(svc, "/api/restaurants/")
    assert {"time", "level", "logger", "message", "event_id"} <= set(request)
    assert request["logger"] == "django.server"


def _logged_request(svc, path: str) -> dict:
    # The access line is written after the response has gone out, so the client can read the log first.
    deadline = time.monotonic() + 10
    while True:
        records = [json.loads(line) for line in svc.logs("web").splitlines() if line.startswith("{")]
        found = [r for r in records if path in r["message"]]
        if found or time.monotonic() > deadline:
            assert found, f"no JSON log line mentions {path}"
            return found[0]
        time.sleep(0.1)
