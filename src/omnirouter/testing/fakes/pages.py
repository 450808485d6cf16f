"""Web pages to fetch, served over real HTTP on loopback (for the web-fetch plugin, the
openrouter:web_fetch tool and PDFs given by URL).

    with FakePages.run_in_thread() as pages:
        pages.page("/article", "<html>...</html>")             # text/html
        pages.page("/doc.pdf", pdf_bytes, "application/pdf")
        pages.redirect("/old", "/article")                     # 302
        pages.slow("/slow", seconds=5)                         # headers only after that long
        url = pages.url("/article")

Every request is recorded (`requests`: the paths asked for, in order).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web

__all__ = ["FakePages"]


@dataclass
class _Entry:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    location: str | None = None
    delay: float = 0.0


class FakePages:
    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self.requests: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, name="FakePages", daemon=True)

    # -- scripting (from any thread)
    def page(self, path: str, body: str | bytes, content_type: str = "text/html; charset=utf-8") -> str:
        data = body.encode() if isinstance(body, str) else body
        with self._lock:
            self._entries[path] = _Entry(body=data, content_type=content_type)
        return self.url(path)

    def redirect(self, path: str, to: str, status: int = 302) -> str:
        with self._lock:
            self._entries[path] = _Entry(status=status, location=to)
        return self.url(path)

    def slow(self, path: str, seconds: float, body: str = "<p>late</p>") -> str:
        with self._lock:
            self._entries[path] = _Entry(body=body.encode(), delay=seconds)
        return self.url(path)

    def status(self, path: str, status: int) -> str:
        with self._lock:
            self._entries[path] = _Entry(status=status, body=b"error")
        return self.url(path)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    # -- serving
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.requests.append(request.path_qs)
            entry = self._entries.get(request.path)
        if entry is None:
            return web.Response(status=404, text="not found")
        if entry.delay:
            await asyncio.sleep(entry.delay)
        if entry.location is not None:
            return web.Response(status=entry.status, headers={"Location": entry.location})
        return web.Response(status=entry.status, body=entry.body, headers={"Content-Type": entry.content_type})

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        server: Any = site._server
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    @classmethod
    def run_in_thread(cls) -> Self:
        pages = cls()
        pages._thread.start()
        pages._ready.wait()
        return pages

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
