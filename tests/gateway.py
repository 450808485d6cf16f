"""A real gateway for tests: uvicorn on a loopback port in a background thread, its own database
(SQLite in a temp dir, or a fresh PostgreSQL database when OMNIROUTER_DATABASE_URL names one)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import uvloop
import yaml

from omnirouter.app import create_app
from omnirouter.batched_writes import connection_options
from omnirouter.governance.keys import new_key
from omnirouter.settings import Settings

PG_ENV = "OMNIROUTER_DATABASE_URL"


def postgres_url() -> str | None:
    url = os.environ.get(PG_ENV, "")
    return url if url.startswith("postgresql") else None


async def _pg_admin(url: str, sql: str) -> None:
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class FreshDatabase:
    """A database of a test's own: None (the SQLite default in its data dir), or a new PostgreSQL
    database when OMNIROUTER_DATABASE_URL names a server, dropped afterwards."""

    def __init__(self, *, create: bool = True) -> None:
        self.name: str | None = None
        self.url: str | None = None
        if create and (base := postgres_url()) is not None:
            self.name = "omni_" + secrets.token_hex(6)
            asyncio.run(_pg_admin(base, f'CREATE DATABASE "{self.name}"'))
            self.url = base.rsplit("/", 1)[0] + "/" + self.name

    def drop(self) -> None:
        if self.name and (base := postgres_url()):
            asyncio.run(_pg_admin(base, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


class Gateway:
    def __init__(self, tmp: Path, config: dict[str, Any] | None = None, **settings: Any) -> None:
        self.tmp = tmp
        self.management_key = new_key()
        config_path = tmp / "omnirouter.yaml"
        config_path.write_text(yaml.safe_dump(config or {}))
        # A test may bring a database of its own (e.g. behind a proxy it controls), which it drops.
        own_url = settings.pop("database_url", None)
        self.database = FreshDatabase(create=own_url is None)
        self.settings = Settings(
            data_dir=tmp / "data",
            config=str(config_path),
            management_key=self.management_key,
            database_url=own_url or self.database.url,
            **{"flush_interval": 0.05, "sync_interval": 0.2, **settings},
        )
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
        # without it every keep-alive response waits ~40 ms on Nagle + delayed ACK.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.api = self.url + "/api/v1"
        self.app = create_app(self.settings)
        self.startup_failure: str | None = None  # what the app said when it could not start
        self.server = uvicorn.Server(
            uvicorn.Config(
                self._serving,
                **connection_options(self.settings),
                log_level="warning",
                lifespan="on",
                interface="asgi3",
            )
        )
        self._admin: httpx.Client | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)

    async def _serving(self, scope: Any, receive: Any, send: Any) -> None:
        """The app, with its startup failure kept for start()'s error (uvicorn's log of it goes to a
        stream pytest does not show for a thread)."""
        if scope["type"] == "lifespan":

            async def recorded(message: Any) -> None:
                if message.get("type") == "lifespan.startup.failed":
                    self.startup_failure = message.get("message")
                await send(message)

            return await self.app(scope, receive, recorded)
        return await self.app(scope, receive, send)

    def _serve(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            await self.server.serve(sockets=[self.sock])

        uvloop.run(main())  # the event loop `omnirouter serve` runs on

    def start(self) -> Gateway:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"gateway failed to start: {self.startup_failure or 'no startup failure reported'}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()
        self.database.drop()

    @property
    def state(self) -> Any:
        return self.app.state.omni

    # -- conveniences for tests
    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.api, headers={"Authorization": f"Bearer {self.management_key}"}, timeout=30)

    def create_key(self, **fields: Any) -> dict[str, Any]:
        # One long-lived client: building an httpx.Client loads the CA bundle (~50 ms) every time.
        if self._admin is None:
            self._admin = self.admin()
        r = self._admin.post("/keys", json={"name": fields.pop("name", "test key"), **fields})
        assert r.status_code == 201, r.text
        return r.json()

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.api, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def flush(self) -> None:
        """Wait until every recorded generation and counter is in the database."""
        assert self.loop is not None
        asyncio.run_coroutine_threadsafe(self.state.recorder.flush(), self.loop).result(timeout=10)


def generation(gw: Gateway, key: str, gen_id: str) -> dict[str, Any]:
    """`GET /generation` once the request is recorded (batched writes), checked against OpenRouter's
    document where it is at hand; money as Decimal."""
    from tests.spec_validation import spec_available, validate_response

    with gw.client(key) as c:
        for _ in range(200):
            r = c.get("/generation", params={"id": gen_id})
            if r.status_code != 404:
                break
            time.sleep(0.05)
    assert r.status_code == 200, r.text
    if spec_available():
        validate_response("getGeneration", r.json())
    return json.loads(r.text, parse_float=Decimal)["data"]


def key_usage(gw: Gateway, key: str) -> Decimal:
    """What the key has spent, as `GET /key` says once everything is written."""
    gw.flush()
    with gw.client(key) as c:
        return Decimal(str(json.loads(c.get("/key").text, parse_float=Decimal)["data"]["usage"]))
