"""The Redis connection every shared structure uses, and its key names.

Keys are `omnirouter:{<tag>}:<rest>`: everything one Lua script touches shares a `{tag}`, so on Redis
Cluster it lives in one hash slot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from omnirouter.startup_errors import StartupError
from omnirouter.store.outage import describe

if TYPE_CHECKING:
    from redis.asyncio import Redis

PREFIX = "omnirouter"
STOP_TIMEOUT = 2.0  # what a worker's shutdown waits for a listener that does not stop when cancelled
RETRY_SECONDS = 1.0  # after a failure, what falls back does so this long before trying the store again

log = logging.getLogger("omnirouter.cluster")
T = TypeVar("T")


def key(tag: str, *rest: str) -> str:
    return ":".join((PREFIX, "{" + tag + "}", *rest))


def check(redis_url: str | None, db_url: str) -> None:
    """Redis shares state between instances, which only a shared database makes meaningful."""
    if redis_url and db_url.startswith("sqlite"):
        raise StartupError(
            "redis_url is set but the database is SQLite, which only one machine's processes can share: for "
            "several instances set database_url (OMNIROUTER_DATABASE_URL) to PostgreSQL, or else unset "
            "redis_url (OMNIROUTER_REDIS_URL)"
        )


def connect(url: str) -> Redis:
    """A client with a connection pool. Nothing is sent until first use: a Redis that is down at start
    is retried by whoever uses it, as it is after a loss."""
    from redis.asyncio import Redis

    return Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
        health_check_interval=5,
    )


async def retried(redis: Redis, send: Callable[[], Awaitable[T]]) -> T:
    """Once more after a dropped connection: the pool may hold connections that a restarted Redis
    closed, so its idle ones are dropped and the retry opens a new one; a Redis that is down fails both."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    try:
        return await send()
    except (RedisConnectionError, OSError):
        await redis.connection_pool.disconnect(inuse_connections=False)
        return await send()


class Outage:
    """A shared store (Redis, or a listener's connection) that cannot be reached, for one of its uses:
    one warning when that starts, saying what it means meanwhile, one line when it ends; and, for a
    use that falls back elsewhere, when to try the store again."""

    def __init__(self, what: str, meanwhile: str, back: str = "") -> None:
        self.what = what
        self.meanwhile = meanwhile
        self.back = back
        self.since: float | None = None
        self.retry_at = 0.0

    def usable(self) -> bool:
        return self.since is None or time.monotonic() >= self.retry_at

    def failed(self, exc: BaseException) -> None:
        self.retry_at = time.monotonic() + RETRY_SECONDS
        if self.since is None:
            self.since = time.monotonic()
            log.warning("%s unreachable (%s): %s", self.what, describe(exc), self.meanwhile)

    def recovered(self) -> None:
        if self.since is not None:
            log.warning("%s reachable again after %.1f s%s", self.what, time.monotonic() - self.since, self.back)
            self.since = None


async def stop_tasks(tasks: list[asyncio.Task[Any]], what: str) -> None:
    """Cancel background tasks and wait for them, a bounded time: a task stuck in a client library's
    reconnection must not hold up the worker's shutdown."""
    for task in tasks:
        task.cancel()
    if tasks:
        _, stuck = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
        if stuck:
            log.warning("%s: %d background task(s) did not stop within %.0f s", what, len(stuck), STOP_TIMEOUT)
