"""`omnirouter byok`: provider keys a workspace brings, through the same code as /byok
(governance/byok_service.py), or with --base-url through a remote gateway's API (which encrypts with its
own key; `rotate` has no API). A provider key is never an argument (shell history keeps those): it is
read from an environment variable (--secret-env), from stdin when piped, or from a hidden prompt."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from omnirouter.commands.common import echo_json, local_only, options, remote, run, run_on_db, settings


def _secret(secret_env: str | None) -> str:
    if secret_env:
        value = os.environ.get(secret_env)
        if not value:
            raise click.BadParameter(f"the environment variable {secret_env} is not set", param_hint="--secret-env")
        return value.strip()
    if not sys.stdin.isatty():
        value = sys.stdin.read().strip()
        if not value:
            raise click.UsageError("no provider key on stdin")
        return value
    return click.prompt("Provider key", hide_input=True).strip()


def _keyring(config: str | None) -> Any:
    """This host's encryption keys (a remote gateway uses its own)."""
    from omnirouter.governance.byok_crypto import keyring_of

    if remote() is not None:
        return None
    try:
        return keyring_of(settings(config))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _providers(config: str | None) -> list[str]:
    from omnirouter.catalog.loader import load_catalog

    if remote() is not None:  # the gateway checks the provider against its own catalog
        return []
    conf = settings(config)
    catalog = load_catalog(config=conf.catalog_config(), env=os.environ, sandbox=conf.sandbox, data_dir=conf.data_dir)
    return list(catalog.providers)


def _body(kind: type, fields: dict[str, Any]) -> Any:
    from omnirouter.governance.key_service import parse
    from omnirouter.jsonio import encode

    return parse(encode(fields), kind)


async def _answer(row: Any) -> Any:
    """A stored key as the API answers it (BYOKKeyResponse)."""
    from omnirouter.governance import byok_service as bs

    return bs.BYOKKeyResponse(data=bs.byok_object(await row))


def _show(answer: Any, as_json: bool) -> None:
    if as_json:
        echo_json(answer)
        return
    _line(answer.data)


def _line(obj: Any) -> None:
    flags = [f for f in ("disabled", "is_fallback", "is_required", "is_byok_only") if getattr(obj, f)]
    click.echo(f"{obj.id}\t{obj.provider}\t{obj.label}\t{obj.name or '-'}\t#{obj.sort_order}\t{','.join(flags) or '-'}")


def _filters(allowed_model: tuple[str, ...], allowed_user: tuple[str, ...], allowed_key: tuple[str, ...]) -> dict:
    out: dict[str, Any] = {}
    for field, values in (
        ("allowed_models", allowed_model),
        ("allowed_user_ids", allowed_user),
        ("allowed_api_key_hashes", allowed_key),
    ):
        if values:
            out[field] = list(values)
    return out


@click.group()
def byok() -> None:
    """Provider keys a workspace brings (BYOK), stored encrypted with OMNIROUTER_ENCRYPTION_KEY."""


_FILTERS = [
    click.option("--allowed-model", multiple=True, help="Only for this model id (repeatable) [any]."),
    click.option("--allowed-user", multiple=True, help="Only for requests with this `user` (repeatable) [any]."),
    click.option("--allowed-key-hash", multiple=True, help="Only for this API key's hash (repeatable) [any]."),
]


def _with_filters(command: Any) -> Any:
    for option in reversed(_FILTERS):
        command = option(command)
    return command


@byok.command("add")
@click.argument("provider")
@click.option("--secret-env", metavar="VAR", help="Read the provider key from this environment variable.")
@click.option("--name", default=None, help="A name to recognise the key by.")
@click.option("--workspace-id", default=None, help="The workspace whose requests use it [default].")
@click.option("--fallback", is_flag=True, help="Try it after the instance's own keys, not before.")
@click.option("--required", is_flag=True, help="Never use the instance's own key for the models it covers.")
@click.option("--byok-only", is_flag=True, help="Never use the instance's own key for this provider.")
@click.option("--disabled", is_flag=True, help="Store it disabled.")
@_with_filters
@options
def byok_add(
    provider: str,
    secret_env: str | None,
    name: str | None,
    workspace_id: str | None,
    fallback: bool,
    required: bool,
    byok_only: bool,
    disabled: bool,
    allowed_model: tuple[str, ...],
    allowed_user: tuple[str, ...],
    allowed_key_hash: tuple[str, ...],
    config: str | None,
    as_json: bool,
) -> None:
    """Store a key for PROVIDER (a configured provider's slug). The key comes from --secret-env, stdin
    or a hidden prompt, never from the command line."""
    from omnirouter.governance import byok_service as bs

    keyring = _keyring(config)
    fields: dict[str, Any] = {
        "provider": provider,
        "key": _secret(secret_env),
        "name": name,
        "is_fallback": fallback,
        "is_required": required,
        "is_byok_only": byok_only,
        "disabled": disabled,
        **_filters(allowed_model, allowed_user, allowed_key_hash),
    }
    if workspace_id is not None:
        fields["workspace_id"] = workspace_id
    body = _body(bs.CreateBYOKKey, fields)
    providers = _providers(config)
    _show(
        run(
            config,
            lambda db: _answer(bs.create(db, keyring, body, providers)),
            lambda api: api.byok.create(body=fields),
        ),
        as_json,
    )


@byok.command("list")
@click.option("--workspace-id", default=None, help="The workspace [default].")
@click.option("--provider", default=None, help="Only this provider's keys.")
@click.option("--offset", type=click.IntRange(min=0), default=0)
@click.option("--limit", type=click.IntRange(1, 100), default=50)
@options
def byok_list(
    workspace_id: str | None, provider: str | None, offset: int, limit: int, config: str | None, as_json: bool
) -> None:
    """List a workspace's BYOK keys (masked)."""
    from omnirouter.governance import byok_service as bs

    query = {"workspace_id": workspace_id, "provider": provider, "offset": offset, "limit": limit}

    async def local(db: Any) -> Any:
        rows, total = await bs.listed(db, **query)
        return bs.BYOKKeyListResponse(data=[bs.byok_object(r) for r in rows], total_count=total)

    listed = run(config, local, lambda api: api.byok.list(**query))
    if as_json:
        echo_json(listed)
        return
    click.echo("id\tprovider\tlabel\tname\tsort_order\tflags")
    for obj in listed.data:
        _line(obj)


@byok.command("get")
@click.argument("key_id")
@options
def byok_get(key_id: str, config: str | None, as_json: bool) -> None:
    """Show one BYOK key (masked)."""
    from omnirouter.governance import byok_service as bs

    _show(run(config, lambda db: _answer(bs.get(db, key_id)), lambda api: api.byok.get(key_id)), as_json)


@byok.command("update")
@click.argument("key_id")
@click.option("--secret-env", metavar="VAR", help="Replace the provider key with this variable's value.")
@click.option("--new-secret", is_flag=True, help="Replace the provider key, read from stdin or a prompt.")
@click.option("--name", default=None, help="A new name.")
@click.option("--disabled/--enabled", default=None, help="Disable or enable it.")
@click.option("--fallback/--no-fallback", default=None)
@click.option("--required/--no-required", default=None)
@click.option("--byok-only/--no-byok-only", default=None)
@click.option("--clear-filters", is_flag=True, help="Remove every model, user and key restriction.")
@_with_filters
@options
def byok_update(
    key_id: str,
    secret_env: str | None,
    new_secret: bool,
    name: str | None,
    disabled: bool | None,
    fallback: bool | None,
    required: bool | None,
    byok_only: bool | None,
    clear_filters: bool,
    allowed_model: tuple[str, ...],
    allowed_user: tuple[str, ...],
    allowed_key_hash: tuple[str, ...],
    config: str | None,
    as_json: bool,
) -> None:
    """Change a BYOK key: only what is given changes."""
    from omnirouter.governance import byok_service as bs

    fields: dict[str, Any] = {}
    if clear_filters:
        fields.update(allowed_models=None, allowed_user_ids=None, allowed_api_key_hashes=None)
    fields.update(_filters(allowed_model, allowed_user, allowed_key_hash))
    optional = {"name": name, "disabled": disabled, "is_fallback": fallback, "is_required": required,
                "is_byok_only": byok_only}  # fmt: skip
    fields.update({k: v for k, v in optional.items() if v is not None})
    if secret_env or new_secret:
        fields["key"] = _secret(secret_env)
    body = _body(bs.UpdateBYOKKey, fields)
    keyring = _keyring(config)

    async def work(db: Any) -> Any:
        return await _answer(bs.update_key(db, keyring, await bs.get(db, key_id), body))

    _show(run(config, work, lambda api: api.byok.update(key_id, body=fields)), as_json)


@byok.command("delete")
@click.argument("key_id")
@options
def byok_delete(key_id: str, config: str | None, as_json: bool) -> None:
    """Delete a BYOK key (its encrypted key is wiped)."""
    from omnirouter.governance import byok_service as bs

    async def work(db: Any) -> None:
        await bs.delete(db, await bs.get(db, key_id))

    run(config, work, lambda api: api.byok.delete(key_id))
    if as_json:
        echo_json(bs.DeleteBYOKKeyResponse(deleted=True))
    else:
        click.echo(f"Deleted {key_id}")


@byok.command("rotate")
@options
@local_only
def byok_rotate(config: str | None, as_json: bool) -> None:
    """Re-encrypt every stored key with the first key of OMNIROUTER_ENCRYPTION_KEY. Put the new key
    first (comma-separated, the old ones after it), run this, then remove the old ones."""
    from omnirouter.governance import byok_service as bs

    keyring = _keyring(config)
    done, stuck = run_on_db(config, lambda db: bs.rotate(db, keyring))
    if as_json:
        echo_json({"rotated": done, "undecryptable": stuck})
    else:
        click.echo(f"Re-encrypted {done} key(s) with the newest encryption key.")
    if stuck:
        raise click.ClickException(
            f"{len(stuck)} key(s) no configured encryption key opens (keep their old key in the setting, or "
            f"delete them): {', '.join(stuck)}"
        )


@byok.command("new-encryption-key")
def byok_new_encryption_key() -> None:
    """Print a new random key for OMNIROUTER_ENCRYPTION_KEY."""
    from omnirouter.governance.byok_crypto import new_key

    click.echo(new_key())
