"""The `omnirouter` command: serve, migrate, keys, credits, catalog; with --base-url, the management
commands administer a remote gateway through its API (commands/common.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

from omnirouter.commands import common
from omnirouter.commands.auth import auth as auth_group
from omnirouter.commands.byok import byok as byok_group
from omnirouter.commands.guardrails import guardrails as guardrails_group
from omnirouter.commands.presets import presets as presets_group
from omnirouter.commands.workspaces import members as members_group
from omnirouter.commands.workspaces import workspaces as workspaces_group
from omnirouter.settings import Settings

MONEY_PLACES = 18  # the scale of store.types.Money


_settings, _cannot_start = common.settings, common.cannot_start


@click.group()
@click.version_option(package_name="omnirouter")
@click.option(
    "--base-url",
    metavar="URL",
    default=None,
    help="Administer the gateway at URL through its API (e.g. https://gw.example.com/api/v1) instead of "
    "this host's database.",
)
@click.option(
    "--key",
    metavar="KEY",
    default=None,
    envvar=common.KEY_ENV,
    help=f"That gateway's management key (or ${common.KEY_ENV}).",
)
@click.pass_context
def main(ctx: click.Context, base_url: str | None, key: str | None) -> None:
    """Omnirouter: a self-hosted, OpenRouter-compatible LLM gateway."""
    common.connect(ctx, base_url, key)


@main.command()
@click.option("--config", type=click.Path(dir_okay=False), help="YAML config file (settings, providers, models).")
@click.option("--host", default=None, help="Address to listen on [127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port to listen on [8000].")
@click.option("--workers", type=int, default=None, help="Worker processes [1].")
@click.option("--sandbox", is_flag=True, default=False, help="Add the offline `sandbox` provider.")
@click.option(
    "--pin-workers",
    is_flag=True,
    default=False,
    envvar="OMNIROUTER_PIN_WORKERS",
    help="With several workers (Linux): each keeps to a CPU of its own. For a host whose CPUs are the server's.",
)
@click.option("--debug", is_flag=True, default=False, help="Show the full traceback when the server cannot start.")
@common.local_only
def serve(
    config: str | None,
    host: str | None,
    port: int | None,
    workers: int | None,
    sandbox: bool,
    pin_workers: bool,
    debug: bool,
) -> None:
    """Run the gateway."""
    import uvicorn

    from omnirouter.batched_writes import connection_options
    from omnirouter.listeners import AddressInUse, refuse_if_listening, run_workers
    from omnirouter.shutdown import server_timeout

    # Workers are separate processes that build their own Settings: hand them the choices by env.
    choices = {"HOST": host, "PORT": port, "WORKERS": workers, "SANDBOX": sandbox or None, "DEBUG": debug or None}
    for name, value in choices.items():
        if value is not None:
            os.environ[f"OMNIROUTER_{name}"] = str(value).lower() if isinstance(value, bool) else str(value)
    settings = _settings(config, debug=debug)
    try:
        # Everything a worker would fail on, checked once here: a clear line instead of one traceback
        # per worker (and a supervisor restarting them).
        refuse_if_listening(settings.host, settings.port)
        _load_catalog(settings)
        minted = asyncio.run(_prepare(settings))
    except AddressInUse as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # a malformed OMNIROUTER_MANAGEMENT_KEY, a bad catalog, no database
        _cannot_start(exc, settings.db_url, debug=settings.debug)
    click.echo(f"Omnirouter data: {_where(settings.db_url)}")
    if minted:
        click.echo("Created a management key. It is shown only this once; store it now:")
        click.echo(f"  {minted}")
    else:
        click.echo("Management key: the one set in OMNIROUTER_MANAGEMENT_KEY, or printed at first start.")
    click.echo(
        f"Create an API key:  curl -X POST http://{settings.host}:{settings.port}/api/v1/keys "
        """-H 'Authorization: Bearer <management key>' -d '{"name": "my key"}'"""
    )
    if settings.sandbox:
        click.echo("Sandbox provider on: try model 'sandbox/chat' with no provider key.")
    _raise_open_files_limit()  # before the workers start: they inherit it
    if settings.workers > 1 and settings.metrics != "off":  # each worker's metrics in files a scrape sums
        from omnirouter.observability.metrics import prepare_multiprocess

        prepare_multiprocess(settings.data_dir)
    options: dict[str, Any] = dict(
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        backlog=settings.backlog,
        loop="uvloop",
        **connection_options(settings),
        log_level=settings.log_level,
        access_log=False,
        # No X-Forwarded-* rewriting (nothing here uses the client address) and no Server header:
        # both are per-request work on the hot path.
        proxy_headers=False,
        server_header=False,
        # On SIGTERM the app cuts streams at shutdown_timeout; uvicorn cancels what is left a little later.
        timeout_graceful_shutdown=server_timeout(settings.shutdown_timeout),
    )
    if settings.log_format == "json":  # one JSON object per line, with the request id (observability/logs.py)
        from omnirouter.observability.logs import log_config

        options["log_config"] = log_config(settings.log_format, settings.log_level)
    if settings.workers > 1:
        try:
            run_workers(uvicorn.Config("omnirouter.app:create_app", **options), pin=pin_workers)
        except OSError as exc:  # the address is taken or not ours to bind
            raise click.ClickException(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from None
    else:
        uvicorn.run("omnirouter.app:create_app", **options)


def _raise_open_files_limit() -> None:
    """Every open stream holds two sockets (client and upstream); the usual soft limit of 1024 open
    files would cap a worker at about 500 streams. Raise it to the hard limit."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 1 << 20, hard))


def _where(db_url: str) -> str:
    """Where the data lives, without credentials: the SQLite file, or the server and database."""
    from omnirouter.startup_errors import data_location

    return data_location(db_url)


def _load_catalog(settings: Settings) -> None:
    """Load the catalog as each worker will, so that a bad entry stops the start here."""
    from omnirouter.catalog.loader import load_catalog

    load_catalog(
        config=settings.catalog_config(),
        env=os.environ,
        sandbox=settings.sandbox,
        data_dir=settings.data_dir,
        config_source=settings.config or "config file",
    )


async def _prepare(settings: Settings) -> str | None:
    """Migrate, replay the journals a killed server left, and make sure a management key exists,
    once, before any worker starts."""
    from omnirouter import observability
    from omnirouter.cluster.redis import check as check_redis
    from omnirouter.governance.bootstrap import ensure_management_key
    from omnirouter.store.db import Database
    from omnirouter.store.journal import replay

    check_redis(settings.redis_url, settings.db_url)
    db = Database(settings.db_url)
    try:
        await db.migrate()
        await replay(db, settings.data_dir, observability.derived())
        secret = settings.management_key.get_secret_value() if settings.management_key else None
        return await ensure_management_key(db, secret)
    finally:
        await db.close()


@main.command()
@click.option("--config", type=click.Path(dir_okay=False), help="YAML config file (settings, providers, models).")
@click.option("--debug", is_flag=True, default=False, help="Full traceback on failure.")
@common.local_only
def migrate(config: str | None, debug: bool) -> None:
    """Bring the database's schema up to date, once, and exit.

    Run it once per deploy, before the new instances start (a Kubernetes Job or init container, a
    one-shot Compose service). Migrations take a lock (PostgreSQL: an advisory lock; SQLite: the
    database's write lock): several at once take turns, and `serve`, which migrates at start too,
    takes the same lock."""
    from omnirouter.store.db import Database

    settings = _settings(config, debug=debug)

    async def run() -> str | None:
        db = Database(settings.db_url)
        try:
            return await db.migrate()
        finally:
            await db.close()

    try:
        revision = asyncio.run(run())
    except Exception as exc:  # no database, wrong credentials
        _cannot_start(exc, settings.db_url, debug=debug)
    click.echo(f"Omnirouter data: {_where(settings.db_url)}: schema at revision {revision}.")


@main.group()
def credits() -> None:
    """Fund the instance and read its balance."""


# ignore_unknown_options: "-1" is a (rejected) amount, not an unknown option.
@credits.command("add", context_settings={"ignore_unknown_options": True})
@click.argument("amount")
@click.option("--config", type=click.Path(dir_okay=False))
@click.option("--note", default=None)
@common.local_only
def credits_add(amount: str, config: str | None, note: str | None) -> None:
    """Add AMOUNT USD of credit. Once funded, the instance's credit is enforced."""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise click.BadParameter(f"{amount!r} is not a number", param_hint="AMOUNT") from None
    if not value.is_finite() or value <= 0:
        raise click.BadParameter("must be a positive amount", param_hint="AMOUNT")
    # Money columns are NUMERIC(38, 18): PostgreSQL would round finer amounts and refuse larger ones.
    if value.normalize().as_tuple().exponent < -MONEY_PLACES:  # type: ignore[operator]
        raise click.BadParameter(f"at most {MONEY_PLACES} decimal places", param_hint="AMOUNT")
    if value >= Decimal(10) ** 20:
        raise click.BadParameter("must be less than 1e20", param_hint="AMOUNT")
    settings = _settings(config)
    total = asyncio.run(_add_credits(settings, value, note))
    click.echo(f"Added {_usd(value)} USD. Total credits: {_usd(total)} USD.")


def _usd(value: Decimal) -> str:
    """Plain notation without the database's trailing zeros: 0.000010000000000000 -> 0.00001."""
    return format(value.normalize(), "f")


async def _add_credits(settings: Settings, value: Decimal, note: str | None) -> Decimal:
    from omnirouter.cluster.changes import announcing
    from omnirouter.store import repo
    from omnirouter.store.db import Database

    db = Database(settings.db_url)
    try:
        await db.migrate()
        async with announcing(db, settings.redis_url), db.change() as conn:
            await repo.add_credits(conn, value, note)
            return await conn.run_sync(repo.total_credits) or Decimal(0)
    finally:
        await db.close()


@main.group()
def keys() -> None:
    """Create, list, disable and delete API keys, as the /keys API does.

    Running servers apply the change at once (a change notice), or at their next sync at the latest."""


_key_options, _keys_run, _echo_json, _plain = common.options, common.run, common.echo_json, common.plain


@keys.command("create")
@click.argument("name")
@click.option("--limit", default=None, help="Spending limit in USD [none].")
@click.option("--limit-reset", type=click.Choice(["daily", "weekly", "monthly"]), help="When the limit resets [never].")
@click.option("--include-byok-in-limit", is_flag=True, help="Count BYOK usage towards the limit.")
@click.option("--expires-at", default=None, help="When the key stops working: ISO 8601 UTC, e.g. 2027-01-01T00:00:00Z.")
@click.option("--workspace-id", default=None, help="The workspace to create the key in [default].")
@click.option("--external-user", default=None, help="A partner's end-user id to attribute the key to.")
@click.option("--rpm-limit", type=click.IntRange(min=1), default=None, help="Requests per minute [unlimited].")
@click.option("--tpm-limit", type=click.IntRange(min=1), default=None, help="Tokens per minute [unlimited].")
@_key_options
def keys_create(
    name: str,
    limit: str | None,
    limit_reset: str | None,
    include_byok_in_limit: bool,
    expires_at: str | None,
    workspace_id: str | None,
    external_user: str | None,
    rpm_limit: int | None,
    tpm_limit: int | None,
    config: str | None,
    as_json: bool,
) -> None:
    """Create a key named NAME; print its secret, shown only this once."""
    from omnirouter.governance import key_service as ks
    from omnirouter.jsonio import encode

    fields: dict[str, Any] = {"name": name, "include_byok_in_limit": include_byok_in_limit}
    if limit is not None:
        try:
            fields["limit"] = Decimal(limit)
        except InvalidOperation:
            raise click.BadParameter(f"{limit!r} is not a number", param_hint="--limit") from None
        if not fields["limit"].is_finite():
            raise click.BadParameter("must be a number >= 0", param_hint="--limit")
    optional = {"limit_reset": limit_reset, "expires_at": expires_at, "workspace_id": workspace_id,
                "rpm_limit": rpm_limit, "tpm_limit": tpm_limit}  # fmt: skip
    fields.update({k: v for k, v in optional.items() if v is not None})
    if external_user is not None:
        fields["external"] = {"user": external_user}

    async def work(db: Any) -> dict[str, Any]:
        # The same JSON the API would receive, through the same validation.
        record, secret = await ks.create(db, ks.parse(encode(fields), ks.CreateKey))
        return {"data": ks.key_object(await ks.ledger_of(db), record), "key": secret}

    async def remote(api: Any) -> dict[str, Any]:
        return _plain(await api.keys.create(body=fields))

    created = _keys_run(config, work, remote)
    if as_json:
        _echo_json(created)
        return
    click.echo(f"Created key {created['data']['name']!r} (hash {created['data']['hash']}).")
    click.echo("Its secret is shown only this once; store it now:")
    click.echo(f"  {created['key']}")


@keys.command("list")
@click.option("--workspace-id", default=None, help="The workspace whose keys to list [default].")
@click.option("--include-disabled", is_flag=True, help="Also list disabled keys.")
@click.option("--include-expired", is_flag=True, help="Also list expired keys.")
@_key_options
def keys_list(
    workspace_id: str | None, include_disabled: bool, include_expired: bool, config: str | None, as_json: bool
) -> None:
    """List keys, most recent first (no management keys, no secrets)."""
    from omnirouter.governance import key_service as ks

    query = {"workspace_id": workspace_id, "include_disabled": include_disabled, "include_expired": include_expired}

    async def work(db: Any) -> list[dict[str, Any]]:
        ledger = await ks.ledger_of(db)
        return [
            ks.key_object(ledger, k) for k in await _every_key(lambda offset: ks.listed(db, **query, offset=offset))
        ]

    async def remote(api: Any) -> list[dict[str, Any]]:
        async def page(offset: int) -> list[Any]:
            return (await api.keys.list(**query, offset=offset)).data

        return [_plain(k) for k in await _every_key(page)]

    listed = _keys_run(config, work, remote)
    if as_json:
        _echo_json({"data": listed})
        return
    click.echo("hash\tname\tlabel\tdisabled\tlimit\tusage\tlast_used_at")
    for k in listed:
        limit = "-" if k["limit"] is None else f"{_usd(k['limit'])}/{k['limit_reset'] or 'total'}"
        cells = (k["hash"], k["name"], k["label"], str(k["disabled"]).lower(), limit, _usd(k["usage"]),
                 k["last_used_at"] or "never")  # fmt: skip
        click.echo("\t".join(cells))


async def _every_key(fetch: Any) -> list[Any]:
    """Every page of /keys, which has no total_count: a short page is the last."""
    from omnirouter.governance.key_service import PAGE_SIZE

    found: list[Any] = []
    while True:
        page = await fetch(len(found))
        found += page
        if len(page) < PAGE_SIZE:
            return found


def _set_disabled(hash_: str, disabled: bool, config: str | None, as_json: bool) -> None:
    from omnirouter.governance import key_service as ks

    async def work(db: Any) -> dict[str, Any]:
        record = await ks.update(db, await ks.get(db, hash_), ks.UpdateKey(disabled=disabled))
        return {"data": ks.key_object(await ks.ledger_of(db), record)}

    async def remote(api: Any) -> dict[str, Any]:
        return _plain(await api.keys.update(hash_, disabled=disabled))

    updated = _keys_run(config, work, remote)
    if as_json:
        _echo_json(updated)
    else:
        click.echo(f"{'Disabled' if disabled else 'Enabled'} key {updated['data']['name']!r} ({hash_}).")


@keys.command("disable")
@click.argument("hash_", metavar="HASH")
@_key_options
def keys_disable(hash_: str, config: str | None, as_json: bool) -> None:
    """Stop the key with this HASH from working (until enabled)."""
    _set_disabled(hash_, True, config, as_json)


@keys.command("enable")
@click.argument("hash_", metavar="HASH")
@_key_options
def keys_enable(hash_: str, config: str | None, as_json: bool) -> None:
    """Let the disabled key with this HASH work again."""
    _set_disabled(hash_, False, config, as_json)


@keys.command("delete")
@click.argument("hash_", metavar="HASH")
@_key_options
def keys_delete(hash_: str, config: str | None, as_json: bool) -> None:
    """Delete the key with this HASH for good."""
    from omnirouter.governance import key_service as ks

    async def work(db: Any) -> str:
        record = await ks.get(db, hash_)
        await ks.delete(db, record)
        return record.name

    async def remote(api: Any) -> str:
        name = (await api.keys.get(hash_)).data.name  # for the message, as the local path reads it
        await api.keys.delete(hash_)
        return name

    name = _keys_run(config, work, remote)
    if as_json:
        _echo_json({"deleted": True})
    else:
        click.echo(f"Deleted key {name!r} ({hash_}).")


@main.group()
def catalog() -> None:
    """Inspect and refresh the model catalog."""


@catalog.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--config", type=click.Path(dir_okay=False))
@common.local_only
def catalog_import(file: Path, config: str | None) -> None:
    """Import an OpenRouter GET /models JSON dump: refresh prices and add models served via OpenRouter."""
    from omnirouter.catalog.importer import import_openrouter_models

    settings = _settings(config)
    try:
        report = import_openrouter_models(file, settings.data_dir)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(report))


@catalog.command("list")
@click.option("--config", type=click.Path(dir_okay=False))
@click.option("--all", "show_all", is_flag=True, help="Include models no configured provider serves.")
@common.local_only
def catalog_list(config: str | None, show_all: bool) -> None:
    """List the models this instance can serve."""
    from omnirouter.catalog.loader import load_catalog

    settings = _settings(config)
    cat = load_catalog(
        config=settings.catalog_config(), env=os.environ, sandbox=settings.sandbox, data_dir=settings.data_dir
    )
    models = cat.models.values() if show_all else cat.live_models()
    for m in sorted(models, key=lambda m: m.id):
        providers = ",".join(e.slug for e in cat.live_endpoints(m)) or "-"
        click.echo(f"{m.id}\t{providers}")


# The governance groups (commands/): one line each.
for _group in (presets_group, byok_group, workspaces_group, members_group, guardrails_group, auth_group):
    main.add_command(_group)


if __name__ == "__main__":
    main()
