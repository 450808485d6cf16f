"""The database goes away under a running gateway: what it can serve from memory it serves, what
needs the database gets 503 with Retry-After, the outage is logged once, and nothing is lost."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from omnirouter.governance.keys import new_key
from omnirouter.store.outage import unreachable
from tests.conftest import standard_config
from tests.gateway import Gateway, _pg_admin, postgres_url

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
OUTAGE = "database unreachable"
RECOVERY = "database reachable again"


def _postgres() -> str:
    """A PostgreSQL server to cut off: the suite's, or the one scripts/test uses."""
    url = postgres_url() or os.environ.get("OMNIROUTER_TEST_POSTGRES", DEFAULT_POSTGRES)
    try:
        asyncio.run(_pg_admin(url, "SELECT 1"))
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(
            f"needs PostgreSQL at {make_url(url).render_as_string()} ({exc}): a SQLite file cannot be made "
            "unreachable under a running server (its connections stay open, and root ignores permissions)"
        )
    return url


class TcpProxy:
    """A TCP relay on loopback to the database server, which the test cuts and restores."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def _call(self, coro) -> None:  # type: ignore[no-untyped-def]
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def open(self) -> None:
        self._call(self._open())

    async def _open(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port, reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}

    def cut(self) -> None:
        """Refuse new connections and reset every open one, as a crashed server or a lost link would."""
        self._call(self._cut())

    async def _cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in list(self.writers):
            w.transport.abort()
        self.writers.clear()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._cut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture
def pg_behind_proxy() -> Iterator[tuple[TcpProxy, str, str]]:
    """(proxy, the gateway's URL through it, the direct URL) of a fresh PostgreSQL database."""
    base = make_url(_postgres())
    name = "omni_outage_" + secrets.token_hex(4)
    server = base.render_as_string(hide_password=False)
    asyncio.run(_pg_admin(server, f'CREATE DATABASE "{name}"'))
    proxy = TcpProxy(base.host or "127.0.0.1", base.port or 5432)
    proxy.open()
    through = base.set(host="127.0.0.1", port=proxy.port, database=name).render_as_string(hide_password=False)
    direct = base.set(database=name).render_as_string(hide_password=False)
    try:
        yield proxy, through, direct
    finally:
        proxy.close()
        asyncio.run(_pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _chat(client: httpx.Client, *, stream: bool = False) -> httpx.Response:
    body = {"model": "test/alpha", "messages": [{"role": "user", "content": "while the database is away"}]}
    return client.post("/chat/completions", json={**body, "stream": stream})


def _cost(r: httpx.Response) -> Decimal:
    if r.headers["content-type"].startswith("text/event-stream"):
        events = [line[6:] for line in r.text.splitlines() if line.startswith("data: {")]
        chunks = [json.loads(e, parse_float=Decimal) for e in events]
        return next(c["usage"]["cost"] for c in chunks if c.get("usage"))
    return r.json(parse_float=Decimal)["usage"]["cost"]


def _assert_503(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "5"
    error = r.json()["error"]
    assert error["code"] == 503
    assert error["metadata"] == {"reason": "database_unavailable", "retry_after": 5}


def _lines(caplog: pytest.LogCaptureFixture, start: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("omnirouter") and r.getMessage().startswith(start)]


def _wait_for(predicate, what: str, timeout: float = 15) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_an_outage_serves_known_keys_answers_503_and_loses_nothing(
    pg_behind_proxy, tmp_path: Path, fake_a, fake_b, caplog: pytest.LogCaptureFixture
):
    proxy, through, direct = pg_behind_proxy
    gw = Gateway(tmp_path, standard_config(fake_a.base_url, fake_b.base_url), database_url=through).start()
    journal_dir = gw.settings.data_dir
    try:
        key = gw.create_key(name="known")
        admin = gw.admin()
        client = gw.client(key["key"])
        costs = [_cost(r) for r in [_chat(client)] if r.status_code == 200]
        assert len(costs) == 1

        with caplog.at_level(logging.INFO, logger="omnirouter"):
            proxy.cut()
            # What memory holds still works: a known key's requests, streamed or not, and its own state.
            during = [_chat(client), _chat(client, stream=True)]
            assert [r.status_code for r in during] == [200, 200], [r.text for r in during]
            costs += [_cost(r) for r in during]
            assert client.get("/key").status_code == 200
            assert client.get("/generation", params={"id": during[0].headers["x-generation-id"]}).status_code == 200

            # What needs the database gets 503 with Retry-After.
            _assert_503(_chat(gw.client(new_key())))  # a key this worker has never seen
            _assert_503(client.get("/generation", params={"id": "gen-0-not-in-memory"}))
            _assert_503(admin.get("/keys"))
            _assert_503(admin.post("/keys", json={"name": "during the outage"}))

            # Requests go on for twenty flush rounds (flush_interval is 0.05 s), each of which fails:
            # still one line, and no traceback.
            _wait_for(lambda: _lines(caplog, OUTAGE), "the outage line")
            until = time.monotonic() + 1.0
            while time.monotonic() < until:
                during.append(r := _chat(client))
                assert r.status_code == 200, r.text
                costs.append(_cost(r))
            assert len(_lines(caplog, OUTAGE)) == 1
            assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
            # The journal keeps what waits, in one growing file rather than one per failed flush.
            assert len(list(journal_dir.glob("journal-*"))) <= 2

            proxy.open()
            _wait_for(lambda: _lines(caplog, RECOVERY), "the recovery line")
            assert len(_lines(caplog, RECOVERY)) == 1
            assert len(_lines(caplog, OUTAGE)) == 1

        assert admin.get("/keys").status_code == 200
        assert _chat(gw.client(new_key())).status_code == 401
        r = admin.post("/keys", json={"name": "after the outage"})
        assert r.status_code == 201
        assert _chat(gw.client(r.json()["key"])).status_code == 200
        gw.flush()
        gw.flush()
        assert client.get("/key").json(parse_float=Decimal)["data"]["usage"] == sum(costs)
        assert len(list(journal_dir.glob("journal-*"))) == 1  # the live segment; the rest was deleted
    finally:
        gw.stop()

    # The generations served during the outage, and their spend, are in the database itself.
    async def stored() -> tuple[set[str], Decimal]:
        conn = await asyncpg.connect(direct.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            rows = await conn.fetch("SELECT id FROM generations WHERE key_hash = $1", key["data"]["hash"])
            ids = {r["id"] for r in rows}
            usage = await conn.fetchval(
                "SELECT usage FROM usage_counters WHERE scope = $1 AND period = 'total'", "key:" + key["data"]["hash"]
            )
        finally:
            await conn.close()
        return ids, usage

    ids, usage = asyncio.run(stored())
    assert {r.headers["x-generation-id"] for r in during} <= ids
    assert usage == sum(costs)


def test_a_stop_during_an_outage_leaves_the_generations_to_the_next_start(
    pg_behind_proxy, tmp_path: Path, fake_a, fake_b, caplog: pytest.LogCaptureFixture
):
    proxy, through, _ = pg_behind_proxy
    config = standard_config(fake_a.base_url, fake_b.base_url)
    gw = Gateway(tmp_path, config, database_url=through).start()
    try:
        key = gw.create_key()["key"]
        proxy.cut()
        with gw.client(key) as c:
            served = [_chat(c), _chat(c, stream=True)]
        assert [r.status_code for r in served] == [200, 200]
        with caplog.at_level(logging.INFO, logger="omnirouter"):
            gw.stop()  # graceful: the last flush fails, and says so in one line
        assert len(_lines(caplog, "database unreachable at shutdown")) == 1
        assert not [r for r in caplog.records if r.exc_info]
    finally:
        gw.stop()

    proxy.open()
    again = Gateway(tmp_path, config, database_url=through).start()  # the same data_dir: replayed
    try:
        with again.client(key) as c:
            for r in served:
                got = c.get("/generation", params={"id": r.headers["x-generation-id"]})
                assert got.status_code == 200, got.text
                assert got.json(parse_float=Decimal)["data"]["total_cost"] == _cost(r)
            assert c.get("/key").json(parse_float=Decimal)["data"]["usage"] == sum(_cost(r) for r in served)
    finally:
        again.stop()


# -- telling an unreachable database from a failing statement, on real errors of each driver


async def _error(url: str, sql: str) -> Exception:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    except Exception as exc:
        return exc
    finally:
        await engine.dispose()
    raise AssertionError("no error")


def _sqlite_error(url: str, sql: str) -> Exception:
    """Through the driver the writer thread uses (aiosqlite wraps the same sqlite3 errors)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    except Exception as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("no error")


def test_sqlite_that_cannot_be_opened_is_unreachable_and_a_bad_statement_is_not(tmp_path):
    assert unreachable(_sqlite_error(f"sqlite:///{tmp_path}/no/such/dir/x.db", "SELECT 1"))
    assert not unreachable(_sqlite_error(f"sqlite:///{tmp_path}/x.db", "SELECT * FROM no_such_table"))


def test_postgresql_refused_or_missing_is_unreachable_and_a_bad_statement_is_not():
    base = make_url(_postgres())
    with socket_closed() as port:
        refused = asyncio.run(_error(base.set(host="127.0.0.1", port=port).render_as_string(False), "SELECT 1"))
    assert unreachable(refused)
    gone = base.set(database="omni_no_such_database").render_as_string(hide_password=False)
    assert unreachable(asyncio.run(_error(gone, "SELECT 1")))
    bad = asyncio.run(_error(base.render_as_string(hide_password=False), "SELECT * FROM no_such_table"))
    assert not unreachable(bad)


@contextlib.contextmanager
def socket_closed() -> Iterator[int]:
    """A loopback port nothing listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port
