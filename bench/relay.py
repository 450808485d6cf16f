"""The floor for figure 4: a bare byte relay in front of the paced upstream, measured like a gateway.

It forwards each client connection's bytes to a new upstream connection and the answer's bytes back,
unparsed: no HTTP, no JSON, no accounting. Whatever a gateway does per relayed chunk costs at least
this (an epoll wake, a read and a write on this machine's kernel), so the number of streams it
carries is the most any gateway written on this event loop could carry here.

    python -m bench.relay --port 0 --upstream-port P
"""

from __future__ import annotations

import argparse
import asyncio

from bench.procs import HOST
from bench.upstream import READY


class _Upstream(asyncio.Protocol):
    def __init__(self, client: asyncio.Transport) -> None:
        self.client = client

    def data_received(self, data: bytes) -> None:
        self.client.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.close()


class _Client(asyncio.Protocol):
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.upstream: asyncio.Transport | None = None
        self.early: list[bytes] = []  # what the client sent before the upstream connection was up

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            upstream, _ = await loop.create_connection(lambda: _Upstream(self.transport), HOST, self.upstream_port)
        except OSError:
            self.transport.close()
            return
        self.upstream = upstream
        for data in self.early:
            upstream.write(data)
        self.early.clear()

    def data_received(self, data: bytes) -> None:
        if self.upstream is None:
            self.early.append(data)
        else:
            self.upstream.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.upstream is not None:
            self.upstream.close()


async def serve(port: int, upstream_port: int) -> None:
    server = await asyncio.get_running_loop().create_server(lambda: _Client(upstream_port), HOST, port, backlog=4096)
    print(f"{READY} http://{HOST}:{server.sockets[0].getsockname()[1]}/v1", flush=True)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.relay")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream-port", type=int, required=True)
    args = parser.parse_args()
    try:
        from uvloop import run
    except ImportError:  # the gateway's own loop is uvloop wherever this one is
        from asyncio import run
    run(serve(args.port, args.upstream_port))


if __name__ == "__main__":
    main()
