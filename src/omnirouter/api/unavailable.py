"""503 with Retry-After for a request that needs the database while it cannot be reached.

Handlers do not catch database errors themselves: app.py routes every exception class a database
can raise here (and chat.py its own path), and store/outage.py tells an unreachable database from
any other error, which stays a logged 500.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import SQLAlchemyError

from omnirouter.api.errors import ApiError
from omnirouter.state import AppState
from omnirouter.store.outage import ASYNCPG_CONNECTION_ERRORS, unreachable

# What reaching the database can raise: SQLAlchemy's wrappers, and what escapes them on connect.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    SQLAlchemyError,
    OSError,  # connection refused or reset, timeouts (TimeoutError is an OSError)
    sqlite3.Error,
    *ASYNCPG_CONNECTION_ERRORS,
)


def database_unavailable(retry_after: int) -> ApiError:
    return ApiError(
        503,
        "The gateway's database is unreachable; try again shortly",
        {"reason": "database_unavailable", "retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def answer(st: AppState, exc: BaseException) -> ApiError | None:
    """The 503 for `exc` if it says the database is unreachable (the outage is noted), else None."""
    if not unreachable(exc):
        return None
    st.db.outage.failed(exc)
    return database_unavailable(st.settings.outage_retry_after)
