"""The Redis connection every shared structure uses, and its key names.

Keys are `omnirouter:{<tag>}:<rest>`: everything one Lua script touches shares a `{tag}`, so on Redis
Cluster it lives in one hash slot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from omnirouter.startup_errors import StartupError

if TYPE_CHECKING:
    from redis.asyncio import Redis

PREFIX = "omnirouter"


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
