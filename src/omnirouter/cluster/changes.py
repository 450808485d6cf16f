"""Change notices: a key disabled, deleted or changed, or credit added, on one worker or instance (or by
the CLI) reaches every other worker in milliseconds instead of at its next `sync_interval` poll.

Whoever commits such a change goes through `Database.change()`, which calls `Changes.changed` after
the commit; that sends a notice carrying only the sender's id. A worker that hears one re-reads the
shared state (Recorder.sync: keys and credits are reloaded because the state's version moved). The
poll stays as the fallback: a notice lost to an outage is made up for by it, and by a full sync each
time a listener (re)connects, as notices sent meanwhile are gone.

One transport per deployment, chosen from what it has:
- Redis (`redis_url`): PUBLISH on one channel, each worker SUBSCRIBEd on a connection of its own.
- PostgreSQL without Redis: NOTIFY, each worker LISTENing on a dedicated connection.
- SQLite: a Unix datagram socket per process in a directory beside the database file, and one
  datagram to each on change (the file is one machine's, and so are the processes sharing it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from omnirouter.cluster import redis as cluster_redis
from omnirouter.cluster.redis import Outage, retried, stop_tasks
from omnirouter.store.outage import describe

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from omnirouter.store.db import Database

log = logging.getLogger("omnirouter.cluster")

CHANNEL = "omnirouter_changes"  # PostgreSQL's LISTEN channel
APPLICATION_NAME = "omnirouter-changes"  # the listening connection's, in pg_stat_activity
REDIS_CHANNEL = cluster_redis.key("changes", "keys")
PUBLISH_TIMEOUT = 1.0  # a management change waits no longer than this for its notice to go out
RECONNECT_DELAY = 0.5  # between a listener's attempts to reconnect
HEARTBEAT = 5.0  # how often an idle listener checks that its connection still answers
SUN_PATH_MAX = 107  # bytes in a Unix socket's path (sockaddr_un.sun_path, less its NUL)
SOCKET_NAME_LEN = 22  # "<16 hex>.sock"

UNHEARD = "changes made elsewhere reach this worker within sync_interval until it is back"

# Called with the sender's id for each notice, or with None after a (re)connection: anything may have
# been missed meanwhile.
Heard = Callable[[str | None], None]


class Transport(Protocol):
    async def publish(self, origin: str) -> None:
        """Send a notice to every listener (including this process's own, which ignores it)."""

    async def listen(self, heard: Heard) -> None:
        """Call `heard` for each notice until cancelled, reconnecting by itself after a loss."""


class RedisNotices:
    """PUBLISH after a change; SUBSCRIBE in each worker. A loss ends `listen`'s inner loop, which
    subscribes again; should the client reconnect and resubscribe by itself (a retry policy), the
    connection's callback says so, as notices may have been missed either way."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.outage = Outage("Redis (change notices)", UNHEARD)
        self._heard: Heard | None = None

    async def publish(self, origin: str) -> None:
        await retried(self.redis, lambda: self.redis.publish(REDIS_CHANNEL, origin))

    def _reconnected(self, _connection: Any) -> None:
        if self._heard is not None:
            self._heard(None)

    async def listen(self, heard: Heard) -> None:
        self._heard = heard
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            connection = None
            try:
                await pubsub.subscribe(REDIS_CHANNEL)
                connection = pubsub.connection
                connection.register_connect_callback(self._reconnected)  # kept as a weak method
                self.outage.recovered()
                heard(None)
                while True:
                    # With a timeout, so that a Redis gone silent (no reset) is found by the health check.
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=HEARTBEAT)
                    if message is not None and message["type"] == "message":
                        heard(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.outage.failed(exc)
            finally:
                if connection is not None:  # it goes back to the client's pool, for other uses
                    connection.deregister_connect_callback(self._reconnected)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(RECONNECT_DELAY)


class PostgresNotices:
    """NOTIFY after a change; LISTEN on a connection of each worker's own, outside the pool (a pooled
    connection goes back to the pool, and with it the LISTEN)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.outage = Outage("PostgreSQL (change notices)", UNHEARD)

    async def publish(self, origin: str) -> None:
        from sqlalchemy import text

        async with self.db.engine.begin() as conn:
            await conn.execute(text("SELECT pg_notify(:channel, :origin)"), {"channel": CHANNEL, "origin": origin})

    def _connect_args(self) -> dict[str, Any]:
        """asyncpg's arguments for the engine's URL, as SQLAlchemy would pass them (host, user, ssl...)."""
        engine = self.db.engine
        _, params = engine.dialect.create_connect_args(engine.url)
        for sqlalchemy_only in ("prepared_statement_cache_size", "prepared_statement_name_func", "async_creator_fn"):
            params.pop(sqlalchemy_only, None)
        # Named, so that an operator sees what the worker's extra connection is for (pg_stat_activity).
        params["server_settings"] = {"application_name": APPLICATION_NAME, **params.get("server_settings", {})}
        return params

    async def listen(self, heard: Heard) -> None:
        import asyncpg

        while True:
            conn = None
            try:
                conn = await asyncpg.connect(**self._connect_args(), timeout=HEARTBEAT)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, lambda _conn, _pid, _channel, payload: heard(payload))
                self.outage.recovered()
                heard(None)
                while True:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), HEARTBEAT)
                    if lost.is_set():
                        raise ConnectionError("the listening connection was closed")
                    await conn.fetchval("SELECT 1", timeout=HEARTBEAT)  # a connection dead without a reset
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.outage.failed(exc)
            finally:
                if conn is not None:
                    conn.terminate()
            await asyncio.sleep(RECONNECT_DELAY)


class LocalSignals:
    """A Unix datagram socket per listening process in one directory; a notice is a datagram sent to
    each socket there. A socket nobody reads any more (its process died) is removed by the next sender."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.own: Path | None = None

    async def publish(self, origin: str) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.setblocking(False)
            for path in self.directory.glob("*.sock"):
                if path == self.own:
                    continue
                try:
                    sender.sendto(origin.encode(), str(path))
                except ConnectionRefusedError:  # nobody bound: a dead process's socket
                    path.unlink(missing_ok=True)
                except (FileNotFoundError, BlockingIOError):  # gone meanwhile; or a full queue, already woken
                    pass
                except OSError as exc:
                    log.debug("change notice to %s not sent: %s", path.name, exc)

    async def listen(self, heard: Heard) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.own = self.directory / f"{secrets.token_hex(8)}.sock"
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.setblocking(False)
        receiver.bind(str(self.own))
        loop = asyncio.get_running_loop()

        def readable() -> None:
            while True:
                try:
                    data = receiver.recv(256)
                except (BlockingIOError, InterruptedError):
                    return
                heard(data.decode(errors="replace"))

        loop.add_reader(receiver.fileno(), readable)
        try:
            heard(None)  # notices sent before the socket was bound were not heard
            await asyncio.Event().wait()
        finally:
            loop.remove_reader(receiver.fileno())
            receiver.close()
            self.own.unlink(missing_ok=True)


def signal_directory(database_file: Path) -> Path:
    """Beside the database (`<file>.changes/`), or in the temporary directory when a socket's path
    there would be too long for a Unix socket; the same for every process using the file."""
    database_file = database_file.resolve()
    beside = database_file.with_name(database_file.name + ".changes")
    if len(str(beside).encode()) + 1 + SOCKET_NAME_LEN <= SUN_PATH_MAX:
        return beside
    digest = hashlib.sha256(str(database_file).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"omnirouter-changes-{os.getuid()}-{digest}"


def transport_for(db: Database, redis: Redis | None) -> Transport | None:
    if redis is not None:
        return RedisNotices(redis)
    if not db.is_sqlite:
        return PostgresNotices(db)
    path = db.url.split(":///", 1)[-1].split("?", 1)[0]
    if not path or path == ":memory:":
        return None  # one process's own database: nobody to tell
    return LocalSignals(signal_directory(Path(path)))


class Changes:
    """This process's notices: sent after each change it commits and, in a server's worker, heard from
    the others and turned into a refresh of the shared state (one per burst of notices)."""

    def __init__(self, transport: Transport | None) -> None:
        self.transport = transport
        self.origin = secrets.token_hex(8)
        self.tasks: list[asyncio.Task[None]] = []
        self._wanted = asyncio.Event()
        self._force = False
        self._unsent = Outage("change notices", "changes made here reach the other workers within sync_interval")

    @classmethod
    def attach(cls, db: Database, redis: Redis | None) -> Changes:
        """Notices for `db`'s changes (Database.change), by the transport the deployment has."""
        changes = cls(transport_for(db, redis))
        db.on_change = changes.changed
        return changes

    async def changed(self) -> None:
        """A change committed: tell the others. Never fails the change: if the notice cannot go out,
        the others see it at their next poll."""
        if self.transport is None:
            return
        try:
            await asyncio.wait_for(self.transport.publish(self.origin), PUBLISH_TIMEOUT)
        except Exception as exc:
            self._unsent.failed(exc)
        else:
            self._unsent.recovered()

    def follow(self, refresh: Callable[[bool], Awaitable[None]]) -> None:
        """Listen in the background; `refresh(force)` re-reads the shared state (force: after a
        reconnection, when notices may have been missed)."""
        if self.transport is None:
            return
        self.tasks = [
            asyncio.create_task(self.transport.listen(self._heard), name="omnirouter-change-listener"),
            asyncio.create_task(self._refreshing(refresh), name="omnirouter-change-refresh"),
        ]

    def _heard(self, origin: str | None) -> None:
        if origin == self.origin:  # this process's own change, already applied where it was made
            return
        if origin is None:
            self._force = True
        self._wanted.set()

    async def _refreshing(self, refresh: Callable[[bool], Awaitable[None]]) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()  # notices heard during the refresh bring another one
            force, self._force = self._force, False
            try:
                await refresh(force)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down: the recorder's poll logs it and retries
                log.debug("refresh after a change notice failed: %s", describe(exc))
                self._force = self._force or force

    async def close(self) -> None:
        await stop_tasks(self.tasks, "change notices")
        self.tasks = []


@contextlib.asynccontextmanager
async def announcing(db: Database, redis_url: str | None) -> AsyncIterator[None]:
    """For a command run beside the servers (the CLI): its changes are announced as a worker's are."""
    redis = cluster_redis.connect(redis_url) if redis_url else None
    Changes.attach(db, redis)
    try:
        yield
    finally:
        if redis is not None:
            await redis.aclose()
