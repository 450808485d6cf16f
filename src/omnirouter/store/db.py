"""Engine creation and migrations, the same for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import msgspec
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Dialect, Engine, create_engine, event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from omnirouter.store.outage import Outage

T = TypeVar("T")

WRITER_NICE = 5
READ_ONLY = "omnirouter_read_only"  # a connection's execution option: its transactions only read (SQLite)

MIGRATIONS = Path(__file__).parent / "migrations"
# The PostgreSQL advisory lock that serialises migrations (any constant that no other program on the
# database uses: "omnirout" in ASCII).
MIGRATION_LOCK = 0x6F6D6E69726F7574


def _json_dumps(value: object) -> str:
    """JSON columns through msgspec: the batched generation writes spend much of their time here."""
    return msgspec.json.encode(value).decode()


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.outage = Outage()  # whether the database is down, and its one log line per outage
        self.on_change: Callable[[], Awaitable[None]] | None = None  # cluster.changes: tells the other workers
        self.sync_engine: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
        if self.is_sqlite:
            path = url.split(":///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: AsyncEngine = create_async_engine(
                url, connect_args={"timeout": 30}, json_serializer=_json_dumps
            )
            _sqlite_pragmas(self.engine.sync_engine)
            if path and path != ":memory:":
                # The background writer's own engine and thread: a flush is one hop to that thread,
                # where through aiosqlite each statement, fetch and commit is a hop of its own
                # (~20 a flush, each a pair of context switches on the event loop's core).
                self.sync_engine = create_engine(
                    url.replace("+aiosqlite", "", 1), connect_args={"timeout": 30}, json_serializer=_json_dumps
                )
                _sqlite_pragmas(self.sync_engine)
                self._thread = ThreadPoolExecutor(1, thread_name_prefix="omnirouter-db", initializer=_lower_priority)
        else:
            self.engine = create_async_engine(
                url, pool_size=5, max_overflow=5, pool_pre_ping=True, json_serializer=_json_dumps
            )

    @property
    def write_dialect(self) -> Dialect:
        """The dialect of the connections that `background(..., write=True)` hands out."""
        return (self.sync_engine or self.engine).dialect

    @property
    def writes_in_thread(self) -> bool:
        """Background work runs in a thread of this process (SQLite), not in the driver (asyncpg)."""
        return self._thread is not None

    async def migrate(self) -> str | None:
        """Bring the schema to the newest revision; return it. One transaction under a lock, so that
        instances (and `omnirouter migrate`) starting together take turns: the first migrates, the
        others then find the schema current. PostgreSQL: a transaction-level advisory lock; SQLite:
        the database's write lock, which every transaction here takes at BEGIN (BEGIN IMMEDIATE)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})

            def upgrade(sync_conn: Any) -> str | None:
                cfg.attributes["connection"] = sync_conn
                command.upgrade(cfg, "head")
                return MigrationContext.configure(sync_conn).get_current_revision()

            return await conn.run_sync(upgrade)

    async def setup_lock(self, conn: AsyncConnection) -> None:
        """Take the migration lock for the rest of `conn`'s transaction: for setup that instances
        starting together must not do twice (the first management key). SQLite's transactions here
        already hold the database's write lock from BEGIN."""
        if not self.is_sqlite:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})

    @contextlib.asynccontextmanager
    async def change(self) -> AsyncIterator[AsyncConnection]:
        """A transaction changing what every worker keeps in memory (keys, credits). Once it commits,
        the other workers and instances hear of it (cluster/changes.py), not only at their next sync."""
        async with self.engine.begin() as conn:
            yield conn
        if self.on_change is not None:
            await self.on_change()

    async def background(self, fn: Callable[..., T], *args: Any, write: bool = False) -> T:
        """Run `fn(connection, *args)` in one transaction (committed if `write`) off the event loop's
        critical path: SQLite in the writer thread, PostgreSQL through asyncpg (no threads to hop)."""
        if self.sync_engine is None or self._thread is None:
            async with self.engine.begin() if write else self.engine.connect() as conn:
                return await conn.run_sync(fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._run, fn, args, write)

    def _run(self, fn: Callable[..., T], args: tuple[Any, ...], write: bool) -> T:
        assert self.sync_engine is not None
        if write:
            with self.sync_engine.begin() as conn:
                return fn(conn, *args)
        # A read (the sync of shared state) takes no write lock: another worker's flush goes on meanwhile.
        with self.sync_engine.connect() as conn:
            conn.execution_options(**{READ_ONLY: True})
            return fn(conn, *args)

    async def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)
        if self.sync_engine is not None:
            self.sync_engine.dispose()
        await self.engine.dispose()


def _lower_priority() -> None:
    """The writer thread shares the event loop's core: when both want it, requests go first. At
    nice 5 the writer still gets a quarter of a saturated core, several times what it needs at full
    load (at nice 10, with the slower writer of before, it fell behind there). At nice 0 one
    request in 100 waited behind a flush: added latency p99 2.96 ms, against 1.41 ms at nice 5."""
    if sys.platform == "linux":  # where a thread has its own nice value
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WRITER_NICE)


def _sqlite_pragmas(sync_engine: Engine) -> None:
    """WAL so readers never block the writer; BEGIN IMMEDIATE so two worker processes that both
    read-then-write a counter serialise instead of failing with 'database is locked'. A connection
    marked READ_ONLY begins a deferred transaction instead: a snapshot, which waits for no writer. With
    two workers each one's sync queued behind the other's flush: beside a flush holding the lock half
    the time, a sync took 58 ms at the 99th percentile, 3.6 ms as a snapshot (bench/sqlite_sync.py)."""

    @event.listens_for(sync_engine, "connect")
    def _connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(sync_engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")
