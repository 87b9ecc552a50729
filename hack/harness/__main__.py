"""``python -m harness up|down|status|build``: the dev environment from the command line (used by make)."""

from __future__ import annotations

import argparse
import logging
import sys

from harness import binaries, environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "status", "build"))
    parser.add_argument("--clusters", default=",".join(environment.DEFAULT_CLUSTERS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "build":
        print(binaries.ensure_binaries())
    elif args.command == "up":
        env = environment.up(names=tuple(args.clusters.split(",")))
        for name, cluster in env.clusters.items():
            print(f"{name}: kubectl --kubeconfig {cluster.kubeconfig} get ns   ({cluster.server})")
        print(f"broker: {env.broker.amqp_url} (management {env.broker.management_url})")
        print(f"state: {env.directory}")
    elif args.command == "down":
        environment.down()
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
