"""gunicorn's configuration for every example service (``gunicorn -c python:common.serving <svc>.wsgi``).

Django's development server (``runserver``) handled about 66 writes/s in one process, which made
the end-to-end figures measure it rather than rabbitsync. gunicorn is the plain choice for a WSGI app
with blocking I/O (SQLite, the outbox relay's hand-off): pre-forked workers for the CPU, threads
(``gthread``) for the waits. Each worker process starts its own outbox relay on first publish
(``rabbitsync.django.relay.local_relay`` is fork-safe and rows are claimed under a lease), so workers
never share a broker connection.

Sizing comes from the pod, through the environment the manifests set:

- ``WEB_CONCURRENCY``: worker processes (gunicorn's own variable). Default: the CPUs this process may
  run on, capped at 4; the manifests set 2 to fit the container's memory limit (about 70 MiB a worker).
- ``WEB_THREADS``: threads per worker, default 4: a request mostly waits for SQLite's write lock.
- ``POD_IP`` and ``PORT``: the address to bind, default ``127.0.0.1:8000``.

The heartbeat files go to ``/dev/shm``: the root filesystem is read-only in the manifests, and a
tmpfs never stalls a worker on disk I/O.
"""

from __future__ import annotations

import os

_MAX_DEFAULT_WORKERS = 4


def _positive(name: str, default: int) -> int:
    value = int(os.environ.get(name) or default)
    if value < 1:
        raise ValueError(f"{name} must be at least 1")
    return value


bind = f"{os.environ.get('POD_IP') or '127.0.0.1'}:{os.environ.get('PORT') or 8000}"
workers = _positive("WEB_CONCURRENCY", min(len(os.sched_getaffinity(0)), _MAX_DEFAULT_WORKERS))
threads = _positive("WEB_THREADS", 4)
worker_class = "gthread"
worker_tmp_dir = "/dev/shm"
timeout = 60
# No runtime control socket (gunicorn >= 25.1 opens one under $HOME, read-only in the pod): the pod
# is managed by Kubernetes, not by ``gunicornc``.
control_socket_disable = True
# One log line per request would cost more than the request at the rates the benchmark offers.
accesslog = None
errorlog = "-"


def worker_exit(_server: object, _worker: object) -> None:
    """A stopping worker's relay releases the rows born leased to it that it has not sent, so the
    sidecar's sweep sends them within a sweep interval instead of once their lease expires."""
    from rabbitsync.django import relay

    relay.stop_local_relay()
