"""`omnirouter workspaces ...` and `omnirouter members ...`: what /workspaces and /organization/members
do, through the same service (governance/workspace_service.py), or with --base-url through a remote
gateway's API; `--json` prints the API's answer. Adding and removing organisation members has no API."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

import click

from omnirouter.commands import common

SORTS = click.Choice(["price", "throughput", "latency", "exacto"])
INTERVALS = click.Choice(["daily", "weekly", "monthly", "lifetime"])


def _parse(fields: dict[str, Any], kind: type) -> Any:
    """The JSON the API would receive, through the same validation (a 400 becomes a usage error)."""
    from omnirouter.errors import GatewayError
    from omnirouter.governance import key_service as ks
    from omnirouter.jsonio import encode

    try:
        return ks.parse(encode(fields), kind)
    except GatewayError as err:
        raise click.UsageError(err.message) from None


def _run(config: str | None, work: Any, remote: Any) -> Any:
    return common.run(config, work, remote)


def _show(payload: Any, as_json: bool, text: str | None = None) -> None:
    if as_json or text is None:
        common.echo_json(payload)
    else:
        click.echo(text)


def _optional(value: str | None) -> str | None:
    """`""` clears a field (null); None leaves it out."""
    return None if value == "" else value


def _slugify(name: str) -> str:
    return "-".join(re.findall("[a-z0-9]+", name.lower()))[:50].strip("-") or "workspace"


@click.group()
def workspaces() -> None:
    """Create, list, update and delete workspaces, their budgets and members, as /workspaces does.

    A workspace is named by its id or its slug. Running servers apply a change at once (a change notice),
    or at their next sync at the latest."""


@workspaces.command("create")
@click.argument("name")
@click.option("--slug", default=None, help="URL-friendly slug [from the name].")
@click.option("--description", default=None)
@click.option("--default-text-model", default=None, help="The model for requests that name none.")
@click.option("--default-image-model", default=None)
@click.option("--default-provider-sort", type=SORTS, default=None, help="provider.sort for requests without one.")
@common.options
def workspaces_create(
    name: str,
    slug: str | None,
    description: str | None,
    default_text_model: str | None,
    default_image_model: str | None,
    default_provider_sort: str | None,
    config: str | None,
    as_json: bool,
) -> None:
    """Create a workspace named NAME."""
    from omnirouter.governance import workspace_service as ws

    given = {"name": name, "slug": slug or _slugify(name), "description": description,
             "default_text_model": default_text_model, "default_image_model": default_image_model,
             "default_provider_sort": default_provider_sort}  # fmt: skip
    fields = {k: v for k, v in given.items() if v is not None}
    body = _parse(fields, ws.CreateWorkspace)

    async def work(db: Any) -> Any:
        return ws.WorkspaceResponse(data=await ws.create(db, body))

    created = _run(config, work, lambda api: api.workspaces.create(body=fields))
    _show(created, as_json, f"Created workspace {created.data.slug!r} (id {created.data.id}).")


@workspaces.command("list")
@common.options
def workspaces_list(config: str | None, as_json: bool) -> None:
    """List every workspace, the default one first."""
    from omnirouter.governance import workspace_service as ws

    async def work(db: Any) -> Any:
        found, total = await common.every_page(lambda offset: ws.listed(db, offset, ws.PAGE_MAX))
        return ws.WorkspaceList(data=found, total_count=total)

    async def remote(api: Any) -> Any:
        found, total = await common.every_page(lambda offset: api.workspaces.list(offset=offset, limit=ws.PAGE_MAX))
        return ws.WorkspaceList(data=found, total_count=total)

    listed = _run(config, work, remote)
    if as_json:
        common.echo_json(listed)
        return
    click.echo("id\tslug\tname\tdefault_text_model\tdefault_provider_sort")
    for w in listed.data:
        click.echo("\t".join((w.id, w.slug, w.name, w.default_text_model or "-", w.default_provider_sort or "-")))


@workspaces.command("get")
@click.argument("workspace")
@common.options
def workspaces_get(workspace: str, config: str | None, as_json: bool) -> None:
    """Show WORKSPACE (its id or slug) as JSON."""
    from omnirouter.governance import workspace_service as ws

    async def work(db: Any) -> Any:
        return ws.WorkspaceResponse(data=await ws.get(db, workspace))

    common.echo_json(_run(config, work, lambda api: api.workspaces.get(workspace)))


@workspaces.command("update")
@click.argument("workspace")
@click.option("--name", default=None)
@click.option("--slug", default=None)
@click.option("--description", default=None, help='"" clears it.')
@click.option("--default-text-model", default=None, help='"" clears it.')
@click.option("--default-image-model", default=None, help='"" clears it.')
@click.option("--default-provider-sort", type=click.Choice(["price", "throughput", "latency", "exacto", ""]),
              default=None, help='"" clears it.')  # fmt: skip
@common.options
def workspaces_update(
    workspace: str,
    name: str | None,
    slug: str | None,
    description: str | None,
    default_text_model: str | None,
    default_image_model: str | None,
    default_provider_sort: str | None,
    config: str | None,
    as_json: bool,
) -> None:
    """Change WORKSPACE's fields given (the others stay)."""
    from omnirouter.governance import workspace_service as ws

    fields: dict[str, Any] = {k: v for k, v in {"name": name, "slug": slug}.items() if v is not None}
    clearable = {
        "description": description,
        "default_text_model": default_text_model,
        "default_image_model": default_image_model,
        "default_provider_sort": default_provider_sort,
    }
    for k, v in clearable.items():
        if v is not None:
            fields[k] = _optional(v)
    body = _parse(fields, ws.UpdateWorkspace)

    async def work(db: Any) -> Any:
        return ws.WorkspaceResponse(data=await ws.update_workspace(db, workspace, body))

    updated = _run(config, work, lambda api: api.workspaces.update(workspace, body=fields))
    _show(updated, as_json, f"Updated workspace {updated.data.slug!r}.")


@workspaces.command("delete")
@click.argument("workspace")
@common.options
def workspaces_delete(workspace: str, config: str | None, as_json: bool) -> None:
    """Delete WORKSPACE with its budgets and memberships (refused while keys belong to it)."""
    from omnirouter.governance import workspace_service as ws

    async def work(db: Any) -> Any:
        await ws.delete_workspace(db, workspace)
        return ws.Deleted()

    _show(
        _run(config, work, lambda api: api.workspaces.delete(workspace)), as_json, f"Deleted workspace {workspace!r}."
    )


# -- budgets


@workspaces.group("budgets")
def budgets() -> None:
    """A workspace's budgets: one per interval (daily, weekly, monthly, lifetime)."""


@budgets.command("set")
@click.argument("workspace")
@click.argument("interval", type=INTERVALS)
@click.argument("limit_usd")
@click.option("--include-byok/--exclude-byok", default=None, help="Count BYOK spend (workspace-wide) [unchanged].")
@common.options
def budgets_set(
    workspace: str, interval: str, limit_usd: str, include_byok: bool | None, config: str | None, as_json: bool
) -> None:
    """Set WORKSPACE's INTERVAL budget to LIMIT_USD."""
    from omnirouter.governance import workspace_service as ws

    try:
        limit = Decimal(limit_usd)
    except InvalidOperation:
        raise click.BadParameter(f"{limit_usd!r} is not a number", param_hint="LIMIT_USD") from None
    if not limit.is_finite():
        raise click.BadParameter("must be a number greater than 0", param_hint="LIMIT_USD")
    fields: dict[str, Any] = {"limit_usd": limit}
    if include_byok is not None:
        fields["include_byok_in_budgets"] = include_byok
    body = _parse(fields, ws.UpsertBudget)

    async def work(db: Any) -> Any:
        return await ws.set_budget(db, workspace, interval, body)

    saved = _run(config, work, lambda api: api.workspaces.budgets.set(workspace, interval, body=fields))
    _show(saved, as_json, f"The {interval} budget of {workspace!r} is ${saved.data.limit_usd}.")


@budgets.command("delete")
@click.argument("workspace")
@click.argument("interval", type=INTERVALS)
@common.options
def budgets_delete(workspace: str, interval: str, config: str | None, as_json: bool) -> None:
    """Remove WORKSPACE's INTERVAL budget."""
    from omnirouter.governance import workspace_service as ws

    async def work(db: Any) -> Any:
        await ws.delete_budget(db, workspace, interval)
        return ws.Deleted()

    deleted = _run(config, work, lambda api: api.workspaces.budgets.delete(workspace, interval))
    _show(deleted, as_json, f"Deleted the {interval} budget of {workspace!r}.")


@budgets.command("list")
@click.argument("workspace")
@common.options
def budgets_list(workspace: str, config: str | None, as_json: bool) -> None:
    """List WORKSPACE's budgets, broadest first."""
    from omnirouter.governance import workspace_service as ws

    async def work(db: Any) -> Any:
        return await ws.budgets(db, workspace)

    listed = _run(config, work, lambda api: api.workspaces.budgets.list(workspace))
    if as_json:
        common.echo_json(listed)
        return
    click.echo(f"include_byok_in_budgets: {str(listed.include_byok_in_budgets).lower()}")
    for b in listed.data:
        click.echo(f"{b.reset_interval or 'lifetime'}\t${b.limit_usd}")


# -- workspace members


@workspaces.group("members")
def workspace_members() -> None:
    """Who belongs to a workspace (every organisation member belongs to the default one)."""


def _members_change(action: str, workspace: str, user_ids: tuple[str, ...], config: str | None, as_json: bool) -> None:
    from omnirouter.governance import workspace_service as ws

    fields = {"user_ids": list(user_ids)}
    body = _parse(fields, ws.MemberIds)

    async def work(db: Any) -> Any:
        if action == "add":
            return await ws.add_members(db, workspace, body)
        return await ws.remove_members(db, workspace, body)

    async def remote(api: Any) -> Any:
        change = api.workspaces.members.add if action == "add" else api.workspaces.members.remove
        return await change(workspace, body=fields)

    done = _run(config, work, remote)
    text = f"Added {done.added_count}." if action == "add" else f"Removed {done.removed_count}."
    _show(done, as_json, text)


@workspace_members.command("add")
@click.argument("workspace")
@click.argument("user_ids", nargs=-1, required=True)
@common.options
def members_add_to(workspace: str, user_ids: tuple[str, ...], config: str | None, as_json: bool) -> None:
    """Add organisation members (USER_IDS) to WORKSPACE, with their organisation role."""
    _members_change("add", workspace, user_ids, config, as_json)


@workspace_members.command("remove")
@click.argument("workspace")
@click.argument("user_ids", nargs=-1, required=True)
@common.options
def members_remove_from(workspace: str, user_ids: tuple[str, ...], config: str | None, as_json: bool) -> None:
    """Remove USER_IDS from WORKSPACE (refused for members with keys in it)."""
    _members_change("remove", workspace, user_ids, config, as_json)


@workspace_members.command("list")
@click.argument("workspace")
@common.options
def members_of(workspace: str, config: str | None, as_json: bool) -> None:
    """List WORKSPACE's members."""
    from omnirouter.governance import workspace_service as ws

    async def work(db: Any) -> Any:
        found, total = await common.every_page(
            lambda offset: ws.workspace_members_of(db, workspace, offset, ws.PAGE_MAX)
        )
        return ws.WorkspaceMemberList(data=found, total_count=total)

    async def remote(api: Any) -> Any:
        found, total = await common.every_page(
            lambda offset: api.workspaces.members.list(workspace, offset=offset, limit=ws.PAGE_MAX)
        )
        return ws.WorkspaceMemberList(data=found, total_count=total)

    listed = _run(config, work, remote)
    if as_json:
        common.echo_json(listed)
        return
    for m in listed.data:
        click.echo(f"{m.user_id}\t{m.role}")


# -- organisation members


@click.group()
def members() -> None:
    """The organisation's members: add, list, remove (GET /organization/members lists them)."""


@members.command("add")
@click.argument("email")
@click.option("--name", default=None, help='Full name: "First Last" (or --first-name/--last-name).')
@click.option("--first-name", default=None)
@click.option("--last-name", default=None)
@click.option("--role", type=click.Choice(["admin", "member"]), default="member", show_default=True)
@common.options
@common.local_only
def members_add(
    email: str,
    name: str | None,
    first_name: str | None,
    last_name: str | None,
    role: str,
    config: str | None,
    as_json: bool,
) -> None:
    """Add EMAIL to the organisation; print their user id (for workspaces and guardrails)."""
    from omnirouter.governance import workspace_service as ws

    if name is not None:
        first, _, last = name.strip().partition(" ")
        first_name, last_name = first_name or first or None, last_name or last.strip() or None
    fields = {"email": email, "first_name": first_name, "last_name": last_name, "role": role}
    body = _parse({k: v for k, v in fields.items() if v is not None}, ws.CreateMember)

    added = common.run_on_db(config, lambda db: ws.add_org_member(db, body))
    _show({"data": added} if as_json else added, as_json, f"Added {added.email} as {added.id} ({added.role}).")


@members.command("list")
@common.options
def members_list(config: str | None, as_json: bool) -> None:
    """List the organisation's members."""
    from omnirouter.governance import workspace_service as ws

    async def work(db: Any) -> Any:
        found, total = await common.every_page(lambda offset: ws.org_members(db, offset, ws.PAGE_MAX))
        return ws.OrganizationMemberList(data=found, total_count=total)

    async def remote(api: Any) -> Any:
        found, total = await common.every_page(
            lambda offset: api.organization.members(offset=offset, limit=ws.PAGE_MAX)
        )
        return ws.OrganizationMemberList(data=found, total_count=total)

    listed = _run(config, work, remote)
    if as_json:
        common.echo_json(listed)
        return
    click.echo("id\temail\tname\trole")
    for m in listed.data:
        full = " ".join(p for p in (m.first_name, m.last_name) if p) or "-"
        click.echo(f"{m.id}\t{m.email}\t{full}\t{m.role}")


@members.command("remove")
@click.argument("member")
@common.options
@common.local_only
def members_remove(member: str, config: str | None, as_json: bool) -> None:
    """Remove MEMBER (user id or email) from the organisation and every workspace."""
    from omnirouter.governance import workspace_service as ws

    removed = common.run_on_db(config, lambda db: ws.remove_org_member(db, member))
    _show({"data": removed}, as_json, f"Removed {removed.email} ({removed.id}).")
