"""One address for a RabbitMQ cluster, as a Kubernetes Service gives one: TCP round robin over live nodes.

A SyncBroker holds one AMQP URI and one management URI. In production they name a Service in front
of the cluster's pods; on loopback the three nodes have three ports, so this small process stands in
for the Service: each new connection goes to the next node in turn, and a node that refuses the
connection (it is down) is skipped for the next one. A connection already open to a node that dies
is cut when the node's sockets close, and the client's reconnect lands on a live node: that is the
failover the fault suite checks.

``python -m chaos.balancer LISTEN=BACKEND[,BACKEND...] ...`` where each address is ``host:port``.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from dataclasses import dataclass

from harness.forward import _pipe as pipe

CONNECT_TIMEOUT_S = 3.0
"""A node that neither accepts nor refuses within this long (hung, or mid-boot) is skipped."""


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Address:
        host, _, port = text.rpartition(":")
        return cls(host or "127.0.0.1", int(port))


@dataclass(frozen=True)
class Rule:
    listen: Address
    backends: tuple[Address, ...]

    @classmethod
    def parse(cls, text: str) -> Rule:
        listen, _, backends = text.partition("=")
        return cls(Address.parse(listen), tuple(Address.parse(b) for b in backends.split(",") if b))


def order(backends: tuple[Address, ...], start: int) -> list[Address]:
    """Every backend once, beginning at ``start`` (mod their number): round robin with fallback."""
    first = start % len(backends)
    return [*backends[first:], *backends[:first]]


async def _connect(backends: list[Address]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    for backend in backends:
        try:
            return await asyncio.wait_for(asyncio.open_connection(backend.host, backend.port), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError):
            continue
    return None


async def _serve(rule: Rule) -> asyncio.Server:
    turns = itertools.count()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await _connect(order(rule.backends, next(turns)))
        if upstream is None:
            writer.close()
            return
        up_reader, up_writer = upstream
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        for w in (writer, up_writer):
            w.close()

    return await asyncio.start_server(handle, rule.listen.host, rule.listen.port, reuse_address=True)


async def _main(rules: list[Rule]) -> None:
    servers = [await _serve(rule) for rule in rules]
    print("balancing " + " ".join(f"{r.listen.port}->{[b.port for b in r.backends]}" for r in rules), flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(_main([Rule.parse(arg) for arg in sys.argv[1:]]))
