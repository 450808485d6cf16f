"""What every `omnirouter` management command shares: settings, the database, errors and --json."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from omnirouter.settings import CONFIG_ENV, Settings
from omnirouter.startup_errors import explain

T = TypeVar("T")


def settings(config: str | None, *, debug: bool = False) -> Settings:
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
