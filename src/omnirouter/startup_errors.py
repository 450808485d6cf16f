"""One line for a failure to start that the user can fix (a bad config file, setting or catalog entry, a
database that cannot be reached), instead of a 50-190 line traceback. Anything else is a bug and keeps
its traceback. `serve --debug` (setting `debug`) keeps every traceback.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc

from omnirouter.settings import CONFIG_ENV, Settings

T = TypeVar("T")

DATABASE_HINT = "check database_url (OMNIROUTER_DATABASE_URL) and that the database server is running"
# Settings whose values are never echoed in an error: they may hold a secret.
_SECRET_WORDS = ("key", "secret", "password", "token", "url")


class StartupError(Exception):
    """Why the server cannot start, in one line: what, where, how to fix."""


def data_location(db_url: str) -> str:
    """Where the data lives, without credentials: the SQLite file, or the server and database."""
    return db_url.split("///", 1)[-1] if db_url.startswith("sqlite") else db_url.rsplit("@", 1)[-1]


def explain(exc: BaseException, db_url: str | None = None) -> str | None:
    """The one line for a failure the user can fix, or None for anything else (a bug)."""
    if isinstance(exc, StartupError):
        return str(exc)
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return (
            f"{mark.name}, line {mark.line + 1}, column {mark.column + 1}: not valid YAML ({exc.problem}); "
            "correct the config file"
        )
    if isinstance(exc, yaml.YAMLError):
        return f"the config file is not valid YAML ({_one_line(exc)}); correct it"
    if isinstance(exc, ValidationError):
        return "invalid setting: " + "; ".join(_setting_error(e) for e in exc.errors())
    if isinstance(exc, sa_exc.ArgumentError):  # a database_url SQLAlchemy cannot use
        return f"invalid database_url: {_one_line(exc)}; {DATABASE_HINT}"
    if isinstance(exc, ModuleNotFoundError) and _raised_in_sqlalchemy(exc):  # e.g. postgresql:// picks psycopg
        return (
            f"database_url needs the driver {exc.name!r}, which is not installed; "
            "use sqlite+aiosqlite:///... or postgresql+asyncpg://..."
        )
    where = data_location(db_url) if db_url else "the configured database"
    if isinstance(exc, sa_exc.DBAPIError):  # the server answered and refused (no such database, role, ...)
        reason = (exc.orig.__cause__ or exc.orig) if exc.orig is not None else exc
        return f"cannot use the database {where}: {_one_line(reason)}; {DATABASE_HINT}"
    if isinstance(exc, OSError):
        if exc.filename is not None:  # a file or directory: the config file, data_dir, the SQLite file
            return f"cannot use {exc.filename}: {exc.strerror or _one_line(exc)}; check the path and its permissions"
        reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or _one_line(exc)
        return f"cannot reach the database {where}: {reason}; {DATABASE_HINT}"
    if isinstance(exc, ValueError):  # the config file's and the catalog's checks name the file and the entry
        return f"invalid configuration: {_one_line(exc)}"
    return None


def _setting_error(error: Any) -> str:
    name = ".".join(str(part) for part in error["loc"]) or "settings"
    env = f"OMNIROUTER_{name.upper()}"
    source = env if env in os.environ else os.environ.get(CONFIG_ENV) or "the environment"
    text = f"`{name}` (from {source}): {error['msg']}"
    if "input" in error and not any(word in name.lower() for word in _SECRET_WORDS):
        text += f" (got {error['input']!r})"
    return text


def _raised_in_sqlalchemy(exc: BaseException) -> bool:
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and f"{os.sep}sqlalchemy{os.sep}" in frames[-1].filename


def _one_line(exc: BaseException | str) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def quiet_lifespan_send(send: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    """The lifespan's `send`, with a StartupError's one line in place of the traceback Starlette reports
    when startup fails (uvicorn logs that message as it is)."""

    async def quiet(message: Any) -> None:
        if message.get("type") == "lifespan.startup.failed" and isinstance(exc := sys.exc_info()[1], StartupError):
            message = {**message, "message": f"cannot start: {exc}"}
        await send(message)

    return quiet


async def one_line_failure(step: Awaitable[T], settings: Settings) -> T:
    """Await a step of the start; a failure the user can fix becomes a StartupError (one line)."""
    try:
        return await step
    except Exception as exc:
        if settings.debug or (line := explain(exc, settings.db_url)) is None:
            raise
        raise StartupError(line) from None
