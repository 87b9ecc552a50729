"""A TCP forwarder between network namespaces: the only door between the host and a node's network.

A node's pods live in network namespaces the harness made, with no route to the host's loopback,
and the host has no route to the pods. Rather than route or NAT on the host, one small process
holds sockets in both namespaces (a thread that ``setns``-es into a namespace creates its sockets
there, and they stay there): the node reaches the API server and the broker on the host end of
its link, and the host reaches the services' ClusterIPs through ``127.0.0.1`` ports.

``python -m harness.forward RULE...`` where RULE is ``LISTEN=TARGET`` and each side is
``[<netns>/]<ip>:<port>`` (no netns: the forwarder's own, the host's).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

_CLONE_NEWNET = 0x40000000
_T = TypeVar("_T")


@dataclass(frozen=True)
class Endpoint:
    netns: str | None
    """A name under /run/netns, or None for the forwarder's own namespace."""
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.netns}/{self.host}:{self.port}" if self.netns else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Rule:
    listen: Endpoint
    target: Endpoint

    def __str__(self) -> str:
        return f"{self.listen}={self.target}"


def parse_endpoint(text: str) -> Endpoint:
    netns, _, address = text.rpartition("/")
    host, _, port = address.rpartition(":")
    return Endpoint(netns or None, host, int(port))


def parse_rule(text: str) -> Rule:
    listen, _, target = text.partition("=")
    return Rule(parse_endpoint(listen), parse_endpoint(target))


def in_netns(netns: str | None, make: Callable[[], _T]) -> _T:
    """``make()`` run in network namespace ``netns``: sockets it creates belong to that namespace."""
    if netns is None:
        return make()
    results: list[_T] = []
    errors: list[BaseException] = []

    def run() -> None:
        # setns changes the calling thread only, so this short-lived thread is the one that moves.
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(f"/run/netns/{netns}") as handle:
                if libc.setns(handle.fileno(), _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {netns}")
            results.append(make())
        except BaseException as e:  # re-raised in the caller's thread
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


def _listener(endpoint: Endpoint) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((endpoint.host, endpoint.port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


async def _serve(rule: Rule) -> asyncio.Server:
    loop = asyncio.get_running_loop()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream = in_netns(rule.target.netns, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            upstream.setblocking(False)
            await loop.sock_connect(upstream, (rule.target.host, rule.target.port))
            up_reader, up_writer = await asyncio.open_connection(sock=upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        for w in (writer, up_writer):
            w.close()

    return await asyncio.start_server(handle, sock=in_netns(rule.listen.netns, lambda: _listener(rule.listen)))


async def _main(rules: list[Rule]) -> None:
    servers = [await _serve(rule) for rule in rules]
    print("forwarding " + " ".join(str(r) for r in rules), flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(_main([parse_rule(arg) for arg in sys.argv[1:]]))
