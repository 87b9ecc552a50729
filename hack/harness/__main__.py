"""``python -m harness up|down|status|build|build-nodes|build-helm|image|operators-up|operators-down|pods|demo``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from harness import binaries, demo, environment, image, operators, podrunner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__)
    parser.add_argument(
        "command",
        choices=tuple(COMMANDS),
    )
    parser.add_argument("--clusters", default=",".join(environment.DEFAULT_CLUSTERS))
    parser.add_argument("--namespaces", default="default", help="pods: namespaces whose Deployments to run")
    parser.add_argument("--ip-prefix", default="127.0.1", help="pods: loopback prefix of the pod IPs")
    parser.add_argument("--kubeconfig", help="pods: admin kubeconfig (default: <state dir>/<cluster>.kubeconfig)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return COMMANDS[args.command](args)


def _up(args: argparse.Namespace) -> int:
    env = environment.up(names=tuple(args.clusters.split(",")))
    for name, cluster in env.clusters.items():
        print(f"{name}: kubectl --kubeconfig {cluster.kubeconfig} get ns   ({cluster.server})")
    print(f"broker: {env.broker.amqp_url} (management {env.broker.management_url})")
    print(f"state: {env.directory}")
    return 0


def _operators_up(args: argparse.Namespace) -> int:
    try:
        started = operators.up(environment.state_dir(), tuple(args.clusters.split(",")))
    except (RuntimeError, TimeoutError) as e:
        print(f"operators-up: {e}", file=sys.stderr)
        return 1
    for op in started:
        print(f"operator {op.cluster}: pid {op.record.pid}, log {op.log}, {op.healthz}")
    return 0


def _pods(args: argparse.Namespace) -> int:
    cluster = args.clusters.split(",")[0]
    state = environment.state_dir()
    kubeconfig = Path(args.kubeconfig) if args.kubeconfig else state / f"{cluster}.kubeconfig"
    podrunner.run_forever(cluster, kubeconfig, args.namespaces.split(","), state, args.ip_prefix)
    return 0


def _status(_args: argparse.Namespace) -> int:
    env = environment.load()
    if env is None:
        print("down")
        return 1
    print("up" if env.alive() else "degraded")
    return 0 if env.alive() else 1


def _done(action: Callable[[], object], show: bool = False) -> Callable[[argparse.Namespace], int]:
    """A command that runs ``action`` (printing its result when ``show``) and succeeds unless it raises."""

    def command(_args: argparse.Namespace) -> int:
        result = action()
        if show:
            print(result)
        return 0

    return command


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "up": _up,
    "down": _done(environment.down),
    "status": _status,
    "build": _done(binaries.ensure_binaries, show=True),
    "build-nodes": _done(binaries.ensure_node_binaries, show=True),
    "build-helm": _done(binaries.ensure_helm, show=True),
    "image": _done(image.ensure_images, show=True),
    "operators-up": _operators_up,
    "operators-down": _done(lambda: operators.down(environment.state_dir())),
    "pods": _pods,
    "demo": _done(demo.run),
}

if __name__ == "__main__":
    sys.exit(main())
