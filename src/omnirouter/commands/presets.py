"""`omnirouter presets`: list, show and create presets, through the same code as the /presets API
(governance/preset_service.py), or with --base-url through a remote gateway's API (whose presets are
the key's workspace's); `--json` prints what the API answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from omnirouter.commands.common import echo_json, every_page, options, remote, run

WORKSPACE_HELP = "The workspace whose presets these are [the default workspace]."
CLI_CREATOR = "omnirouter-cli"  # a version's creator_id when the CLI, not a key, wrote it


def _workspace(workspace_id: str | None) -> str:
    from omnirouter.governance.workspaces import DEFAULT_WORKSPACE_ID

    if workspace_id is not None and remote() is not None:
        raise click.UsageError("--workspace-id: through the API, presets are those of the key's workspace.")
    return workspace_id or DEFAULT_WORKSPACE_ID


def _plain(value: Any) -> Any:
    import msgspec

    return msgspec.to_builtins(value)


@click.group()
def presets() -> None:
    """Named, versioned request configurations, used as `"model": "@preset/SLUG"`.

    Running servers apply a new version at once (a change notice), or at their next sync at the latest."""


@presets.command("list")
@click.option("--workspace-id", default=None, help=WORKSPACE_HELP)
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Presets to skip [0].")
@click.option("--limit", type=click.IntRange(1, 100), default=50, help="Presets to show, at most 100 [50].")
@options
def presets_list(workspace_id: str | None, offset: int, limit: int, config: str | None, as_json: bool) -> None:
    """List presets, most recently updated first."""
    from omnirouter.governance import preset_service as ps

    workspace = _workspace(workspace_id)
    page = _plain(
        run(
            config,
            lambda db: ps.listed(db, workspace, offset, limit),
            lambda api: api.presets.list(offset=offset, limit=limit),
        )
    )
    if as_json:
        echo_json(page)
        return
    click.echo("slug\tstatus\tupdated_at\tid")
    for p in page["data"]:
        click.echo("\t".join((p["slug"], p["status"], p["updated_at"], p["id"])))


@presets.command("get")
@click.argument("slug")
@click.option("--workspace-id", default=None, help=WORKSPACE_HELP)
@options
def presets_get(slug: str, workspace_id: str | None, config: str | None, as_json: bool) -> None:
    """Show the preset SLUG and its active version."""
    from omnirouter.governance import preset_service as ps

    workspace = _workspace(workspace_id)
    found = _plain(run(config, lambda db: ps.get(db, workspace, slug), lambda api: _data(api.presets.get(slug))))
    if as_json:
        echo_json({"data": found})
        return
    _show(found)


@presets.command("versions")
@click.argument("slug")
@click.argument("version", required=False)
@click.option("--workspace-id", default=None, help=WORKSPACE_HELP)
@options
def presets_versions(
    slug: str, version: str | None, workspace_id: str | None, config: str | None, as_json: bool
) -> None:
    """List the versions of the preset SLUG, oldest first, or show its VERSION."""
    from omnirouter.governance import preset_service as ps

    workspace = _workspace(workspace_id)
    if version is not None:
        one = _plain(
            run(
                config,
                lambda db: ps.version(db, workspace, slug, version),
                lambda api: _data(api.presets.version(slug, version)),
            )
        )
        if as_json:
            echo_json({"data": one})
        else:
            _show_version(one)
        return

    async def every(db: Any) -> dict[str, Any]:
        found, total = await every_page(lambda offset: ps.versions(db, workspace, slug, offset, ps.MAX_LIMIT))
        return {"data": found, "total_count": total}

    async def every_remote(api: Any) -> dict[str, Any]:
        found, total = await every_page(lambda offset: api.presets.versions(slug, offset=offset, limit=ps.MAX_LIMIT))
        return {"data": found, "total_count": total}

    listed = _plain(run(config, every, every_remote))
    if as_json:
        echo_json(listed)
        return
    click.echo("version\tcreated_at\tmodel\tid")
    for v in listed["data"]:
        model = v["config"].get("model") or ",".join(v["config"].get("models") or ()) or "-"
        click.echo("\t".join((str(v["version"]), v["created_at"], model, v["id"])))


@presets.command("create")
@click.argument("slug")
@click.option(
    "--from-file",
    "from_file",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
    required=True,
    help="An inference request body (JSON; - for stdin). Its conversation is not kept.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["chat", "messages", "responses"]),
    default="chat",
    help="The API the body is for: /chat/completions, /messages or /responses [chat].",
)
@click.option("--workspace-id", default=None, help=WORKSPACE_HELP)
@options
def presets_create(
    slug: str, from_file: str, fmt: str, workspace_id: str | None, config: str | None, as_json: bool
) -> None:
    """Create the preset SLUG from a request body, or add its next version (which becomes the active one)."""
    import msgspec

    from omnirouter.governance import preset_service as ps

    workspace = _workspace(workspace_id)
    raw = click.get_binary_stream("stdin").read() if from_file == "-" else Path(from_file).read_bytes()
    creator = ps.Creator(user_id=None, id=CLI_CREATOR)
    api_of = {"chat": "create_from_chat", "messages": "create_from_messages", "responses": "create_from_responses"}
    created = _plain(
        run(
            config,
            lambda db: ps.create_from_body(db, workspace, slug, fmt, raw, creator),
            # The body as read, so the gateway validates exactly what the local service would.
            lambda api: _data(getattr(api.presets, api_of[fmt])(slug, body=msgspec.Raw(raw))),
        )
    )
    if as_json:
        echo_json({"data": created})
        return
    version = created["designated_version"]["version"]
    click.echo(f"Preset {slug!r}: version {version} is now active (preset id {created['id']}).")


async def _data(call: Any) -> Any:
    return (await call).data


def _show(preset: dict[str, Any]) -> None:
    click.echo(f"slug: {preset['slug']}\nid: {preset['id']}\nstatus: {preset['status']}")
    click.echo(f"workspace_id: {preset['workspace_id']}\nupdated_at: {preset['updated_at']}")
    if preset["designated_version"] is not None:
        _show_version(preset["designated_version"])


def _show_version(version: dict[str, Any]) -> None:
    from omnirouter.jsonio import encode

    click.echo(f"version: {version['version']} (created {version['created_at']})")
    click.echo(f"system_prompt: {version['system_prompt'] if version['system_prompt'] is not None else '-'}")
    click.echo(f"config: {encode(version['config']).decode()}")
