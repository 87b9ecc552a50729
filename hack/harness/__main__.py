"""``python -m harness up|down|status|build|build-nodes|image|operators-up|operators-down|pods|demo``: for make."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from harness import binaries, demo, environment, image, operators, podrunner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__)
    parser.add_argument(
        "command",
        choices=(
            "up",
            "down",
            "status",
            "build",
            "build-nodes",
            "image",
            "operators-up",
            "operators-down",
            "pods",
            "demo",
        ),
    )
    parser.add_argument("--clusters", default=",".join(environment.DEFAULT_CLUSTERS))
    parser.add_argument("--namespaces", default="default", help="pods: namespaces whose Deployments to run")
    parser.add_argument("--ip-prefix", default="127.0.1", help="pods: loopback prefix of the pod IPs")
    parser.add_argument("--kubeconfig", help="pods: admin kubeconfig (default: <state dir>/<cluster>.kubeconfig)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "build":
        print(binaries.ensure_binaries())
    elif args.command == "build-nodes":
        print(binaries.ensure_node_binaries())
    elif args.command == "image":
        print(image.ensure_images())
    elif args.command == "up":
        env = environment.up(names=tuple(args.clusters.split(",")))
        for name, cluster in env.clusters.items():
            print(f"{name}: kubectl --kubeconfig {cluster.kubeconfig} get ns   ({cluster.server})")
        print(f"broker: {env.broker.amqp_url} (management {env.broker.management_url})")
        print(f"state: {env.directory}")
    elif args.command == "down":
        environment.down()
    elif args.command == "operators-up":
        try:
            started = operators.up(environment.state_dir(), tuple(args.clusters.split(",")))
        except (RuntimeError, TimeoutError) as e:
            print(f"operators-up: {e}", file=sys.stderr)
            return 1
        for op in started:
            print(f"operator {op.cluster}: pid {op.record.pid}, log {op.log}, {op.healthz}")
    elif args.command == "pods":
        cluster = args.clusters.split(",")[0]
        state = environment.state_dir()
        kubeconfig = Path(args.kubeconfig) if args.kubeconfig else state / f"{cluster}.kubeconfig"
        podrunner.run_forever(cluster, kubeconfig, args.namespaces.split(","), state, args.ip_prefix)
    elif args.command == "demo":
        demo.run()
    elif args.command == "operators-down":
        operators.down(environment.state_dir())
    else:
        env = environment.load()
        if env is None:
            print("down")
            return 1
        print("up" if env.alive() else "degraded")
        return 0 if env.alive() else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
