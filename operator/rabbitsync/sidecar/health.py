"""Liveness, readiness and metrics over HTTP, for the kubelet's probes and Prometheus.

``/healthz``: the consumer loop turned recently (it turns at least every fraction of a second,
also while a handler runs), so a wedged process gets restarted; a sidecar without subscriptions
turns while its outbox relay thread lives. A handler running past its deadline
(``HANDLER_DEADLINE``) fails it too: the kubelet restarts the sidecar and the unacknowledged
delivery comes back. Paused consumption (database unreachable) stays alive on purpose: restarting
cannot bring a database back, and a restart loop would only add load when it returns; the body
says ``paused`` and why, and ``rabbitsync_consumer_paused`` shows it. ``/readyz``: connected and consuming; without
subscriptions, simply up (see :class:`State`). ``/metrics``: Prometheus text format.
"""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rabbitsync.sidecar.metrics import Metrics

log = logging.getLogger(__name__)

LIVENESS_WINDOW = 60.0
"""Seconds without a loop turn before /healthz fails; far above any normal pause."""


class State:
    """What the consumer loop tells the probes; plain attributes, written by one thread.

    A publish-only sidecar (no subscriptions) is ready as soon as it serves. Not "when the relay is
    connected": the sidecar's readiness is the pod's, and a broker outage must not take the
    service's own API out of its Service; the outbox holds the writes meanwhile, and the
    ``rabbitsync_outbox_backlog`` gauge shows them waiting.
    """

    def __init__(self, *, publish_only: bool = False, handler_deadline: float = 0.0) -> None:
        self.publish_only = publish_only
        self.consuming = False
        self.last_turn = time.monotonic()
        self.paused: str | None = None
        """Why consumption is paused (an infrastructure outage), or ``None``."""
        self.handler_deadline = handler_deadline
        """Seconds a handler may run before liveness fails; 0: no deadline."""
        self.handler_started: float | None = None
        """``time.monotonic()`` when the handler in flight started, or ``None``."""

    def ready(self) -> bool:
        return self.publish_only or self.consuming

    def turn(self) -> None:
        self.last_turn = time.monotonic()

    def alive(self) -> bool:
        return time.monotonic() - self.last_turn < LIVENESS_WINDOW and not self.overdue()

    def handler_age(self) -> float:
        """Seconds the handler in flight has been running; 0 when none is."""
        started = self.handler_started
        return 0.0 if started is None else time.monotonic() - started

    def overdue(self) -> bool:
        return self.handler_deadline > 0 and self.handler_age() > self.handler_deadline

    def liveness(self) -> tuple[int, bytes]:
        """The ``/healthz`` answer: status code and a body saying why."""
        if self.overdue():
            return 503, f"handler running for {self.handler_age():.0f}s, past its deadline\n".encode()
        if not self.alive():
            return 503, b"stalled\n"
        paused = self.paused
        return 200, b"ok\n" if paused is None else f"ok, consumption paused: {paused}\n".encode()


class HealthServer:
    def __init__(self, port: int, state: State, metrics: Metrics, host: str = "0.0.0.0") -> None:
        self._server = ThreadingHTTPServer((host, port), _handler_class(state, metrics))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="rabbitsync-http", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_class(state: State, metrics: Metrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._reply(*state.liveness())
            elif self.path == "/readyz":
                self._reply(200 if state.ready() else 503, b"ready\n" if state.ready() else b"not ready\n")
            elif self.path == "/metrics":
                self._reply(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            else:
                self._reply(404, b"not found\n")

        def _reply(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            # Probes hit every few seconds; access lines would drown the event log.
            log.debug("http " + format, *args)

    return Handler
