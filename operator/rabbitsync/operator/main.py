"""``rabbitsync-operator``: run the controller against the cluster of KUBECONFIG (or in-cluster config)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import threading

import kopf
import prometheus_client
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rabbitsync.operator import handlers, memory
from rabbitsync.operator.kube.api import api_client
from rabbitsync.operator.metrics import OperatorMetrics
from rabbitsync.operator.settings import OperatorSettings, SettingsError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rabbitsync-operator",
        description="Reconcile SyncSubscriptions onto the shared RabbitMQ. Flags override RABBITSYNC_* variables.",
    )
    p.add_argument("--cluster", help="this cluster's name on the broker (RABBITSYNC_CLUSTER, required)")
    p.add_argument("--namespace", action="append", help="namespace to watch, repeatable (RABBITSYNC_NAMESPACES)")
    p.add_argument("--resync-seconds", help="drift repair / status refresh interval (RABBITSYNC_RESYNC_SECONDS)")
    p.add_argument("--log-format", choices=("text", "json"), help="RABBITSYNC_LOG_FORMAT")
    p.add_argument("--health-port", help="liveness endpoint port (RABBITSYNC_HEALTH_PORT)")
    p.add_argument("--metrics-port", help="Prometheus /metrics port (RABBITSYNC_METRICS_PORT)")
    p.add_argument("--verbose", action="store_true", help="debug logging")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    env = dict(os.environ)
    overrides = {
        "RABBITSYNC_CLUSTER": args.cluster,
        "RABBITSYNC_NAMESPACES": ",".join(args.namespace) if args.namespace else None,
        "RABBITSYNC_RESYNC_SECONDS": args.resync_seconds,
        "RABBITSYNC_LOG_FORMAT": args.log_format,
        "RABBITSYNC_HEALTH_PORT": args.health_port,
        "RABBITSYNC_METRICS_PORT": args.metrics_port,
    }
    env.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = OperatorSettings.from_env(env)
    except SettingsError as e:
        print(f"rabbitsync-operator: error: {e}", file=sys.stderr)
        return 2
    api = api_client(handlers.workers(settings))
    try:
        settings = _with_install_id(settings, api)
    except SettingsError as e:
        print(f"rabbitsync-operator: error: {e}", file=sys.stderr)
        return 2
    kopf.configure(
        verbose=args.verbose, log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL
    )
    # pika logs ~20 INFO lines per connection, i.e. per reconcile and resync: they would drown our own.
    logging.getLogger("pika").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    if not args.verbose:
        logging.getLogger("kopf.objects").addFilter(handlers.QuietResync())
    metrics = OperatorMetrics()
    prometheus_client.start_http_server(settings.metrics_port, settings.health_host, registry=metrics.registry)
    registry = kopf.OperatorRegistry()
    handlers.register(registry, settings, metrics)
    kopf_settings = kopf.OperatorSettings()
    handlers.configure(kopf_settings, settings)
    # The peak of a burst of creates stays in the allocator's free lists otherwise (``memory``).
    stop_trimming = threading.Event()
    memory.trim_every(settings.resync_seconds, stop_trimming)
    try:
        kopf.run(
            registry=registry,
            settings=kopf_settings,
            standalone=True,
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            liveness_endpoint=f"http://{settings.health_host}:{settings.health_port}/healthz",
            memo=kopf.Memo(api=api),
        )
    finally:
        stop_trimming.set()
    return 0


def _with_install_id(settings: OperatorSettings, api: client.ApiClient) -> OperatorSettings:
    """``settings`` with the install id: ``RABBITSYNC_INSTALL_ID``, else the UID of ``kube-system``, which
    lives exactly as long as the cluster (a reinstalled operator keeps its claim on the broker)."""
    if settings.install_id:
        return settings
    try:
        # A list by name: the operator's role may list and watch Namespaces (kopf needs it), not get one.
        found = client.CoreV1Api(api).list_namespace(field_selector="metadata.name=kube-system").items
    except (ApiException, OSError) as e:
        raise SettingsError(
            f"cannot read Namespace kube-system for the install id (or set RABBITSYNC_INSTALL_ID): {e}"
        ) from e
    uid = found[0].metadata.uid if found and found[0].metadata else None
    if not uid:
        raise SettingsError(
            "Namespace kube-system not found: set RABBITSYNC_INSTALL_ID to something unique to this cluster"
        )
    return dataclasses.replace(settings, install_id=str(uid))


if __name__ == "__main__":
    sys.exit(main())
