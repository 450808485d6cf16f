"""Telling a database that cannot be reached from one that answered with an error, and saying so once.

While the database is down the gateway keeps serving what it holds in memory (known keys, their
counters, generations not yet flushed) and answers 503 with Retry-After to whatever needs the
database. The outage is logged once when it starts and once when it ends, not once per failed flush.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator

from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger("omnirouter.store")

# sqlite3.OperationalError messages that mean the file cannot be used, not that a statement is wrong.
SQLITE_UNAVAILABLE = ("unable to open", "disk i/o error", "database is locked", "readonly database", "disk is full")


def _asyncpg_connection_errors() -> tuple[type[BaseException], ...]:
    try:
        import asyncpg
    except ImportError:
        return ()
    return (
        asyncpg.PostgresConnectionError,  # connection refused by the server, cannot connect now, ...
        asyncpg.ConnectionDoesNotExistError,  # "connection was closed in the middle of operation"
        asyncpg.TooManyConnectionsError,
        asyncpg.InvalidCatalogNameError,  # the database was dropped or renamed
        asyncpg.AdminShutdownError,  # terminated by an administrator or a shutdown
        asyncpg.CannotConnectNowError,
    )


ASYNCPG_CONNECTION_ERRORS = _asyncpg_connection_errors()


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what SQLAlchemy wrapped (`orig`), and their causes and contexts."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [x for x in (getattr(e, "orig", None), e.__cause__, e.__context__) if isinstance(x, BaseException)]


def unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached or used at all (not a bad statement)."""
    for e in _causes(exc):
        if isinstance(e, DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, (DisconnectionError, PoolTimeout, OSError, TimeoutError, ConnectionError)):
            return True
        if ASYNCPG_CONNECTION_ERRORS and isinstance(e, ASYNCPG_CONNECTION_ERRORS):
            return True
        if isinstance(e, sqlite3.OperationalError) and any(m in str(e).lower() for m in SQLITE_UNAVAILABLE):
            return True
    return False


def describe(exc: BaseException) -> str:
    """The driver's error, without SQLAlchemy's statement and parameters (they name key hashes)."""
    orig = next((e for e in _causes(exc) if not type(e).__module__.startswith("sqlalchemy")), exc)
    text = str(orig).split("\n", 1)[0][:200]
    return f"{type(orig).__name__}: {text}" if text else type(orig).__name__


class Outage:
    """Whether the database is down, as the last attempt to use it found."""

    def __init__(self) -> None:
        self.since: float | None = None

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.error(
                "database unreachable (%s): serving known keys from memory, buffering generations, "
                "answering 503 to requests that need the database",
                describe(exc),
            )

    def recovered(self, pending: int = 0) -> None:
        if self.since is not None:
            lasted = time.monotonic() - self.since
            self.since = None
            log.warning("database reachable again after %.1f s; %d buffered generations written", lasted, pending)
