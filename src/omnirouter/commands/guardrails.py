"""`omnirouter guardrails`: create, list, show, change and delete guardrails and assign them to keys and
members, through the same code as the /guardrails API (governance/guardrail_service.py), or with
--base-url through a remote gateway's API: the body the options build is validated as an API request
body, and `--json` prints what the API answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import msgspec

from omnirouter.commands.common import echo_json, options, plain, remote, run

CLI_ASSIGNER = "omnirouter-cli"  # an assignment's assigned_by when the CLI made it


def _fields(command: Any) -> Any:
    """The options create and update share; each maps to one field of the API's body."""
    opts = [
        click.option("--body", "body_file", type=click.Path(exists=True, dir_okay=False),
                     help="A JSON file with the API's request body; the options below override its fields."),
        click.option("--description", default=None),
        click.option("--limit-usd", default=None, help="Spending limit in USD ('none' for no limit)."),
        click.option("--reset-interval", type=click.Choice(["daily", "weekly", "monthly", "none"]), default=None),
        click.option("--include-byok-in-budgets/--exclude-byok-from-budgets", default=None),
        click.option("--allowed-model", multiple=True, help="Repeat for several (replaces the list)."),
        click.option("--ignored-model", multiple=True),
        click.option("--allowed-provider", multiple=True),
        click.option("--ignored-provider", multiple=True),
        click.option("--enforce-zdr/--no-enforce-zdr", default=None, help="Every model group (anthropic ... other)."),
        click.option("--filter", "filters", multiple=True, metavar="ACTION:PATTERN",
                     help="A regex content filter: block, redact or flag, then the pattern."),
        click.option("--builtin", "builtins", multiple=True, metavar="SLUG:ACTION",
                     help="A builtin filter, e.g. email:redact, credit-card:block, regex-prompt-injection:block."),
        click.option("--clear", multiple=True, metavar="FIELD", help="Set FIELD to null, e.g. allowed_models."),
    ]  # fmt: skip
    for opt in reversed(opts):
        command = opt(command)
    return command


def _pair(text: str, what: str) -> tuple[str, str]:
    first, sep, rest = text.partition(":")
    if not sep or not first or not rest:
        raise click.BadParameter(f"{text!r}: expected {what}")
    return first, rest


def _body(kw: dict[str, Any], **base: Any) -> bytes:
    """The API request body the options describe."""
    body: dict[str, Any] = json.loads(Path(kw["body_file"]).read_text()) if kw.get("body_file") else {}
    if not isinstance(body, dict):
        raise click.BadParameter("the --body file must hold a JSON object")
    body.update(base)
    if kw["description"] is not None:
        body["description"] = kw["description"]
    if kw["limit_usd"] is not None:
        body["limit_usd"] = None if kw["limit_usd"].lower() == "none" else _number(kw["limit_usd"])
    if kw["reset_interval"] is not None:
        body["reset_interval"] = None if kw["reset_interval"] == "none" else kw["reset_interval"]
    if kw["include_byok_in_budgets"] is not None:
        body["include_byok_in_budgets"] = kw["include_byok_in_budgets"]
    for opt in ("allowed_model", "ignored_model", "allowed_provider", "ignored_provider"):
        if kw[opt]:
            body[opt + "s"] = list(kw[opt])
    if kw["enforce_zdr"] is not None:
        body["enforce_zdr"] = kw["enforce_zdr"]
    if kw["filters"]:
        body["content_filters"] = [
            {"action": a, "pattern": p} for a, p in (_pair(f, "ACTION:PATTERN") for f in kw["filters"])
        ]
    if kw["builtins"]:
        body["content_filter_builtins"] = [
            {"slug": s, "action": a} for s, a in (_pair(b, "SLUG:ACTION") for b in kw["builtins"])
        ]
    for field in kw.get("clear") or ():
        body[field] = None
    return json.dumps(body).encode()


def _number(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a number", param_hint="--limit-usd") from None


def _catalog(config: str | None) -> Any:
    """The catalog a server with this configuration serves (model and provider ids are checked on it);
    a remote gateway checks them on its own."""
    import os

    if remote() is not None:
        return None

    from omnirouter.catalog.loader import load_catalog
    from omnirouter.commands.common import settings

    conf = settings(config)
    return load_catalog(config=conf.catalog_config(), env=os.environ, sandbox=conf.sandbox, data_dir=conf.data_dir)


def _show(g: dict[str, Any]) -> None:
    for name, value in g.items():
        if value is None or value == []:
            continue
        # Keys sorted: the service's dicts and the client's Structs order a filter's fields differently.
        click.echo(f"{name}: {json.dumps(value, sort_keys=True) if isinstance(value, list | dict) else value}")


@click.group()
def guardrails() -> None:
    """Policies on models, providers, data retention, content and spend, assigned to keys and members.

    Running servers apply a change at once (a change notice), or at their next sync at the latest."""


@guardrails.command("create")
@click.argument("name")
@click.option("--workspace-id", default=None, help="The workspace to create it in [the default workspace].")
@_fields
@options
def guardrails_create(name: str, workspace_id: str | None, config: str | None, as_json: bool, **kw: Any) -> None:
    """Create a guardrail named NAME (it acts once assigned to keys or members)."""
    from omnirouter.governance import guardrail_service as gs

    base = {"name": name, **({"workspace_id": workspace_id} if workspace_id else {})}
    raw = _body(kw, **base)
    catalog = _catalog(config)
    created = run(
        config,
        lambda db: gs.create(db, gs.parse(raw, gs.CreateGuardrail), catalog),
        lambda api: _data(api.guardrails.create(body=msgspec.Raw(raw))),
    )
    if as_json:
        echo_json({"data": created})
        return
    click.echo(f"Created guardrail {created['name']} ({created['id']})")


@guardrails.command("list")
@click.option("--workspace-id", default=None, help="The workspace [the default workspace].")
@click.option("--offset", type=click.IntRange(min=0), default=0)
@click.option("--limit", type=click.IntRange(1, 100), default=50)
@options
def guardrails_list(workspace_id: str | None, offset: int, limit: int, config: str | None, as_json: bool) -> None:
    """List a workspace's guardrails, oldest first."""
    from omnirouter.governance import guardrail_service as gs

    page = {"workspace_id": workspace_id, "offset": offset, "limit": limit}
    listed = run(config, lambda db: _listing(gs.listed(db, **page)), lambda api: _answer(api.guardrails.list(**page)))
    if as_json:
        echo_json(listed)
        return
    click.echo("id\tname\tlimit_usd\treset_interval")
    for g in listed["data"]:
        click.echo(
            "\t".join(str(g[f]) if g[f] is not None else "-" for f in ("id", "name", "limit_usd", "reset_interval"))
        )


@guardrails.command("get")
@click.argument("guardrail_id")
@options
def guardrails_get(guardrail_id: str, config: str | None, as_json: bool) -> None:
    """Show the guardrail GUARDRAIL_ID."""
    from omnirouter.governance import guardrail_service as gs

    found = run(config, lambda db: gs.get(db, guardrail_id), lambda api: _data(api.guardrails.get(guardrail_id)))
    if as_json:
        echo_json({"data": found})
        return
    _show(found)


@guardrails.command("update")
@click.argument("guardrail_id")
@click.option("--name", default=None)
@_fields
@options
def guardrails_update(guardrail_id: str, name: str | None, config: str | None, as_json: bool, **kw: Any) -> None:
    """Change the guardrail GUARDRAIL_ID (lists given are replaced whole). A workspace's
    default_guardrail_id configures that workspace's default guardrail."""
    from omnirouter.governance import guardrail_service as gs

    raw = _body(kw, **({"name": name} if name else {}))
    catalog = _catalog(config)
    updated = run(
        config,
        lambda db: gs.update(db, guardrail_id, gs.parse(raw, gs.UpdateGuardrail), catalog),
        lambda api: _data(api.guardrails.update(guardrail_id, body=msgspec.Raw(raw))),
    )
    if as_json:
        echo_json({"data": updated})
        return
    _show(updated)


@guardrails.command("delete")
@click.argument("guardrail_id")
@options
def guardrails_delete(guardrail_id: str, config: str | None, as_json: bool) -> None:
    """Delete the guardrail GUARDRAIL_ID and its assignments."""
    from omnirouter.governance import guardrail_service as gs

    run(config, lambda db: gs.delete(db, guardrail_id), lambda api: api.guardrails.delete(guardrail_id))
    if as_json:
        echo_json({"deleted": True})
        return
    click.echo(f"Deleted guardrail {guardrail_id}")


def _bulk(name: str, help_: str, field: str, op: str, counted: str) -> None:
    @guardrails.command(name, help=help_)
    @click.argument("guardrail_id")
    @click.argument("ids", nargs=-1, required=True)
    @options
    def command(guardrail_id: str, ids: tuple[str, ...], config: str | None, as_json: bool) -> None:
        from omnirouter.governance import guardrail_service as gs

        body = gs.parse(
            json.dumps({field: list(ids)}).encode(), gs.BulkKeys if field == "key_hashes" else gs.BulkMembers
        )
        fn = getattr(gs, op)
        extra = (CLI_ASSIGNER,) if op.startswith("assign") else ()

        async def local(db: Any) -> dict[str, int]:
            return {counted: await fn(db, guardrail_id, body, *extra)}

        async def remote_call(api: Any) -> dict[str, int]:
            group = api.guardrails.keys if field == "key_hashes" else api.guardrails.members
            change = group.assign if op.startswith("assign") else group.unassign
            return plain(await change(guardrail_id, body={field: list(ids)}))

        done = run(config, local, remote_call)
        if as_json:
            echo_json(done)
            return
        click.echo(f"{counted.replace('_', ' ')}: {done[counted]}")


_bulk("assign-keys", "Assign the keys (hashes) to GUARDRAIL_ID; each key's previous guardrail is replaced.",
      "key_hashes", "assign_keys", "assigned_count")  # fmt: skip
_bulk("unassign-keys", "Remove the keys (hashes) from GUARDRAIL_ID.", "key_hashes", "unassign_keys", "unassigned_count")
_bulk("assign-members", "Assign the members (user ids) to GUARDRAIL_ID; their keys follow it.",
      "member_user_ids", "assign_members", "assigned_count")  # fmt: skip
_bulk("unassign-members", "Remove the members (user ids) from GUARDRAIL_ID.", "member_user_ids", "unassign_members",
      "unassigned_count")  # fmt: skip


@guardrails.command("assignments")
@click.argument("guardrail_id", required=False)
@click.option("--members", is_flag=True, help="Member assignments instead of key assignments.")
@click.option("--offset", type=click.IntRange(min=0), default=0)
@click.option("--limit", type=click.IntRange(1, 100), default=50)
@options
def guardrails_assignments(
    guardrail_id: str | None, members: bool, offset: int, limit: int, config: str | None, as_json: bool
) -> None:
    """List the key (or member) assignments of GUARDRAIL_ID, or of every guardrail."""
    from omnirouter.governance import guardrail_service as gs

    op = gs.member_assignments if members else gs.key_assignments
    listed = run(
        config,
        lambda db: _listing(op(db, guardrail_id, offset=offset, limit=limit)),
        lambda api: _answer(
            (api.guardrails.members if members else api.guardrails.keys).list(guardrail_id, offset=offset, limit=limit)
        ),
    )
    if as_json:
        echo_json(listed)
        return
    who = "user_id" if members else "key_hash"
    click.echo(f"guardrail_id\t{who}\tcreated_at")
    for a in listed["data"]:
        click.echo(f"{a['guardrail_id']}\t{a[who]}\t{a['created_at']}")


async def _listing(found: Any) -> dict[str, Any]:
    """A service's (data, total) as the API answers it."""
    data, total = await found
    return {"data": data, "total_count": total}


async def _answer(call: Any) -> Any:
    return plain(await call)


async def _data(call: Any) -> Any:
    return plain((await call).data)
