"""Loopback receivers for the observability destinations' tests: one HTTP server recording every
request (any path), answering a chosen status, and a blackhole that accepts connections and never
answers. Tests wait on what arrives (a condition variable), never sleep."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


class Receiver:
    """Records every request; answers `status` (a list: the next answers, then 200)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: list[int] = []
        self.cond = threading.Condition()
        self.loop = asyncio.new_event_loop()
        self.port = 0
        started = threading.Event()

        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            with self.cond:
                status = self.statuses.pop(0) if self.statuses else 200
                if status < 300:
                    headers = {k.lower(): v for k, v in request.headers.items()}
                    self.requests.append(Received(request.method, request.path, headers, body))
                self.cond.notify_all()
            return web.json_response({"ok": status < 300}, status=status)

        async def start() -> None:
            app = web.Application(client_max_size=1 << 26)
            app.router.add_route("*", "/{tail:.*}", handle)
            self.runner = web.AppRunner(app, access_log=None)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(start())
            started.set()
            self.loop.run_forever()
            self.loop.run_until_complete(self.runner.cleanup())

        self.thread = threading.Thread(target=run, name="receiver", daemon=True)
        self.thread.start()
        started.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, *statuses: int) -> None:
        with self.cond:
            self.statuses[:] = list(statuses)

    def wait(self, done: Callable[[list[Received]], Any], timeout: float = 20) -> Any:
        """The first truthy `done(requests)`, waiting for requests until it is."""
        with self.cond:
            result = self.cond.wait_for(lambda: done(list(self.requests)), timeout)
        assert result, f"not received in {timeout} s: {[(r.method, r.path) for r in self.requests]}"
        return result

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


class Blackhole:
    """Accepts TCP connections and never answers (a destination that hangs)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self._accept, name="blackhole", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)
            self.connected.set()

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()
