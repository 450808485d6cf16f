"""What every `omnirouter` management command shares: settings, the database or a remote gateway,
errors and --json.

Each management command states its API call in one place, `run(config, local, remote)`: `local(db)`
runs on this host's database, or, with `omnirouter --base-url URL --key KEY`, `remote(api)` through the
client (omnirouter.client) against that gateway. Both return the API's answer, so what
the command prints is the same either way. A command with no API equivalent is `local_only`; and
anything that reads this host's settings refuses with --base-url, so no command acts locally by mistake.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit

import click

from omnirouter.settings import CONFIG_ENV, Settings
from omnirouter.startup_errors import explain

T = TypeVar("T")

KEY_ENV = "OMNIROUTER_KEY"  # not OPENROUTER_API_KEY: SDK users have that set, and the CLI must not go remote by it
API_PATH = "/api/v1"
REMOTE_TIMEOUT = 60.0  # management calls are quick; a stuck gateway should not hold a script for 10 minutes
_REMOTE = "omnirouter.remote"  # where `main` leaves the Remote in click's context (ctx.meta, shared by subcommands)


@dataclass(frozen=True)
class Remote:
    base_url: str
    key: str = field(repr=False)

    @property
    def shown(self) -> str:
        """The URL without credentials, for messages."""
        parts = urlsplit(self.base_url)
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def connect(ctx: click.Context, base_url: str | None, key: str | None) -> None:
    """`main`'s --base-url and --key: remember the gateway for the commands, or refuse a half choice."""
    if base_url is None:
        if key is not None and ctx.get_parameter_source("key") is click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError("--key is a remote gateway's management key: give --base-url too.")
        return
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(f"{base_url!r} is not an http(s) URL", param_hint="--base-url")
    if parts.path in ("", "/"):  # a bare host: the gateway serves its API under /api/v1
        parts = parts._replace(path=API_PATH)
    if not key:
        raise click.UsageError(f"--base-url needs the gateway's management key: --key KEY (or ${KEY_ENV}).")
    ctx.meta[_REMOTE] = Remote(urlunsplit(parts).rstrip("/"), key)


def remote() -> Remote | None:
    """The gateway the command administers, or None for this host's database."""
    ctx = click.get_current_context(silent=True)
    return None if ctx is None else ctx.meta.get(_REMOTE)


def refuse_remote() -> None:
    if remote() is not None:
        path = click.get_current_context().command_path
        raise click.UsageError(
            f"`{path}` works on this host's configuration and database and has no API equivalent: "
            "run it without --base-url, on the gateway's host."
        )


def local_only(command: Callable[..., T]) -> Callable[..., T]:
    """A command with no API equivalent: refused with --base-url before it does anything."""

    @functools.wraps(command)
    def checked(*args: Any, **kwargs: Any) -> T:
        refuse_remote()
        return command(*args, **kwargs)

    return checked


def settings(config: str | None, *, debug: bool = False) -> Settings:
    refuse_remote()  # this host's settings mean local work: never with --base-url
    if config:
        if not Path(config).is_file():
            raise click.BadParameter(f"{config}: no such file", param_hint="--config")
        os.environ[CONFIG_ENV] = str(Path(config).resolve())
    try:
        return Settings()
    except Exception as exc:
        cannot_start(exc, None, debug=debug)


def cannot_start(exc: Exception, db_url: str | None, *, debug: bool = False) -> NoReturn:
    """One line (what, where, how to fix) for a failure the user can fix; the traceback with --debug
    or for anything else, which is a bug."""
    line = None if debug else explain(exc, db_url)
    if line is None:
        raise exc
    raise click.ClickException(line) from None


def options(command: Any) -> Any:
    """--json and --config, which every management command takes."""
    command = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")(command)
    return click.option("--config", type=click.Path(dir_okay=False), help="YAML config file.")(command)


def run_on_db(config: str | None, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(db)` against the configured database, announcing what it changes to running servers;
    the API's errors become the CLI's."""
    from omnirouter.cluster.changes import announcing
    from omnirouter.errors import GatewayError
    from omnirouter.store.db import Database

    conf = settings(config)

    async def run() -> T:
        db = Database(conf.db_url)
        try:
            await db.migrate()
            async with announcing(db, conf.redis_url):
                return await work(db)
        finally:
            await db.close()

    try:
        return asyncio.run(run())
    except GatewayError as err:
        if err.status == 400:
            raise click.UsageError(err.message) from None
        raise click.ClickException(err.message) from None


def run(config: str | None, local: Callable[[Any], Awaitable[T]], remote_call: Callable[[Any], Awaitable[T]]) -> T:
    """A command's API call: `local(db)` on this host's database, or `remote_call(api)` (an
    AsyncOpenRouter) with --base-url. Both answer what the API answers; errors become the CLI's."""
    target = remote()
    return run_on_db(config, local) if target is None else run_remote(target, remote_call)


def run_remote(target: Remote, call: Callable[[Any], Awaitable[T]]) -> T:
    from omnirouter.client import AsyncOpenRouter
    from omnirouter.client.errors import APIConnectionError, APIError

    async def go() -> T:
        async with AsyncOpenRouter(api_key=target.key, base_url=target.base_url, timeout=REMOTE_TIMEOUT) as api:
            return await call(api)

    try:
        return asyncio.run(go())
    except APIError as err:  # the server's message, as run_on_db shows the service's (never the key)
        if err.status == 400:
            raise click.UsageError(err.message) from None
        raise click.ClickException(err.message) from None
    except APIConnectionError as err:
        raise click.ClickException(f"cannot reach the gateway at {target.shown}: {err}") from None


def plain(answer: Any) -> Any:
    """A client's Struct as the dicts the local services build: money stays Decimal, times ISO strings."""
    import msgspec

    return msgspec.to_builtins(answer, builtin_types=(Decimal,))


async def every_page(fetch: Callable[[int], Awaitable[Any]]) -> tuple[list[Any], int]:
    """Every item of a paged listing (`fetch(offset)` answers a page with `data` and `total_count`),
    and the total: the CLI lists everything, not the API's first page."""
    found: list[Any] = []
    while True:
        page = await fetch(len(found))
        found += page.data
        if len(found) >= page.total_count or not page.data:
            return found, page.total_count


def echo_json(payload: Any) -> None:
    from omnirouter.jsonio import encode

    click.echo(encode(payload).decode())
