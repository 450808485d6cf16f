"""Preset management shared by the API (/presets*) and the CLI (`omnirouter presets`): the shapes
clients read, creating a preset (or its next version) from an inference body, and reading them back.

A preset is created from a /chat/completions, /messages or /responses body. The body is checked as
that endpoint would check it (except that it needs no conversation), turned into the internal chat
form by the format's own parse, and only what a preset holds is kept (PRESET_FIELDS); `messages`,
`input`, `prompt`, `stream` and every per-request field are dropped without complaint. The system
prompt is kept apart: the system messages a chat body starts with, a Messages body's `system`, a
Responses body's `instructions`."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from omnirouter.errors import GatewayError, not_found
from omnirouter.formats import anthropic_request, openai_chat, responses_request
from omnirouter.governance.key_service import OFFSET_MAX
from omnirouter.governance.presets import MARK, system_prompt_of
from omnirouter.store import repo
from omnirouter.store.db import Database
from omnirouter.store.tables import preset_versions, presets

FORMATS = ("chat", "messages", "responses")
Format = Literal["chat", "messages", "responses"]
SLUG_PATTERN = "^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$"
SLUG = re.compile(SLUG_PATTERN)
SLUG_RULE = "1-64 lowercase letters, digits, '-' or '_', starting and ending with a letter or digit"
DEFAULT_LIMIT, MAX_LIMIT = 50, 100
CONFLICT = "Resource conflict. Please try again later."
ATTEMPTS = 3  # a preset created at the same moment by another request: try again as its next version

# What a preset holds, as the internal (chat) request names it (behaviors §4.4: model or models, provider
# preferences, parameters, tools, plugins, response-cache settings).
PRESET_FIELDS = (
    "model",
    "models",
    "provider",
    "route",
    "plugins",
    "transforms",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "top_a",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "max_tokens",
    "max_completion_tokens",
    "seed",
    "stop",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "response_format",
    "structured_outputs",
    "reasoning",
    "reasoning_effort",
    "include_reasoning",
    "verbosity",
    "web_search_options",
    "modalities",
    "image_config",
    "service_tier",
    "cache_enabled",
    "cache_ttl_seconds",
)
# Per-request fields a preset never holds, dropped before the body is checked (so that, say, a Responses
# body's `store: true`, refused on /responses, is simply ignored here).
IGNORED = frozenset({"prompt", "stream", "store", "background", "previous_response_id"})
PLACEHOLDER = [{"role": "user", "content": "-"}]  # stands in for a conversation, which a preset never holds


# -- the shapes clients read (the OpenAPI document's, by name)

PresetStatus = Literal["active", "disabled", "archived"]


class PresetDesignatedVersion(msgspec.Struct):
    """A specific version of a preset: its config (the internal chat request's fields) and system prompt."""

    id: str
    preset_id: str
    creator_id: str
    version: int
    system_prompt: str | None
    config: dict[str, Any]
    created_at: str
    updated_at: str


class Preset(msgspec.Struct):
    """A preset without version details."""

    id: str
    creator_user_id: str | None
    workspace_id: str | None
    name: str
    slug: str
    description: str | None
    status: PresetStatus
    designated_version_id: str | None
    created_at: str
    updated_at: str
    status_updated_at: str | None


class PresetWithDesignatedVersion(Preset):
    """A preset with its currently designated version."""

    designated_version: PresetDesignatedVersion | None


class ListPresetsResponse(msgspec.Struct):
    data: list[Preset]
    total_count: int


class GetPresetResponse(msgspec.Struct):
    data: PresetWithDesignatedVersion


class CreatePresetFromInferenceResponse(msgspec.Struct):
    data: PresetWithDesignatedVersion


class ListPresetVersionsResponse(msgspec.Struct):
    data: list[PresetDesignatedVersion]
    total_count: int


class GetPresetVersionResponse(msgspec.Struct):
    data: PresetDesignatedVersion


class PresetsQuery(msgspec.Struct, kw_only=True):
    """The pages of /presets and /presets/{slug}/versions (as the document's, read by `page`)."""

    offset: Annotated[int, Meta(ge=0, le=OFFSET_MAX, description="Number of records to skip for pagination")] | None = 0
    limit: Annotated[int, Meta(ge=1, le=MAX_LIMIT, description="Maximum number of records to return")] = DEFAULT_LIMIT


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _version_object(row: Any) -> PresetDesignatedVersion:
    created = iso(row.created_at) or ""
    return PresetDesignatedVersion(
        id=row.id,
        preset_id=row.preset_id,
        creator_id=row.creator_id,
        version=row.version,
        system_prompt=row.system_prompt,
        config=row.config,
        created_at=created,
        updated_at=created,  # a version is never changed once written
    )


def _fields(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "creator_user_id": row.creator_user_id,
        "workspace_id": row.workspace_id,
        "name": row.name,
        "slug": row.slug,
        "description": row.description,
        "status": row.status,
        "designated_version_id": row.designated_version_id,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "status_updated_at": iso(row.status_updated_at),
    }


# -- input


def check_slug(slug: str) -> str:
    if not SLUG.fullmatch(slug):
        raise GatewayError(400, f"Invalid preset slug {slug[:80]!r}: a slug is {SLUG_RULE}")
    return slug


def page(offset: Any, limit: Any) -> tuple[int, int]:
    """offset and limit from a query string (or the CLI): 400 for what the document does not allow."""

    def number(name: str, value: Any, default: int) -> int:
        if value is None or value == "" or value == "null":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise GatewayError(400, f"{name} must be an integer, got {str(value)[:40]!r}") from None

    off, lim = number("offset", offset, 0), number("limit", limit, DEFAULT_LIMIT)
    if not 0 <= off <= OFFSET_MAX:
        raise GatewayError(400, f"offset must be between 0 and {OFFSET_MAX}")
    if not 1 <= lim <= MAX_LIMIT:
        raise GatewayError(400, f"limit must be between 1 and {MAX_LIMIT}")
    return off, lim


def config_of(fmt: str, body: Any) -> tuple[str | None, dict[str, Any]]:
    """The system prompt and config a preset keeps from an inference body of format `fmt`."""
    if not isinstance(body, dict):
        raise GatewayError(400, "Request body must be a JSON object")
    body = {k: v for k, v in body.items() if k not in IGNORED}
    if fmt == "chat":
        if body.get("messages") is None:
            body["messages"] = PLACEHOLDER
        openai_chat.parse(body)  # refuses what /chat/completions refuses
        internal: dict[str, Any] = body
    elif fmt == "messages":
        body["messages"] = PLACEHOLDER  # its system prompt is `system`
        internal = anthropic_request.parse_request(body, count_only=True)  # max_tokens optional here
    elif fmt == "responses":
        body["input"] = "-"  # its system prompt is `instructions`
        internal = responses_request.parse_request(body)
    else:
        raise GatewayError(400, f"Unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    config = {name: value for name in PRESET_FIELDS if (value := internal.get(name)) is not None}
    for model in [config.get("model"), *(config.get("models") or ())]:
        if isinstance(model, str) and MARK in model:
            raise GatewayError(400, f"Invalid request: a preset cannot name another preset ({model!r})")
    system_prompt = system_prompt_of(internal.get("messages"))
    if "\x00" in (system_prompt or "") or b"\\u0000" in msgspec.json.encode(config):  # PostgreSQL's text refuses NUL
        raise GatewayError(400, "Invalid request: a preset cannot hold NUL characters")
    return system_prompt, config


# -- operations


@dataclass(frozen=True)
class Creator:
    """Who creates a preset: the management key's user (when it has one), and an id for its versions."""

    user_id: str | None
    id: str


async def create_from_body(
    db: Database, workspace: str, slug: str, fmt: str, raw: bytes, creator: Creator
) -> PresetWithDesignatedVersion:
    """Create the preset `slug` from an inference body, or add a version to it; the new version is the
    active one. Everything is written in one transaction, or nothing is."""
    check_slug(slug)
    try:
        body = msgspec.json.decode(raw or b"")
    except msgspec.DecodeError:
        raise GatewayError(400, "Invalid JSON in request body") from None
    system_prompt, config = config_of(fmt, body)
    for attempt in range(ATTEMPTS):
        try:
            await _write_version(db, workspace, slug, system_prompt, config, creator)
            break
        except IntegrityError:  # another request created the preset, or its next version, meanwhile
            if attempt == ATTEMPTS - 1:
                raise GatewayError(409, CONFLICT) from None
    return await get(db, workspace, slug)


async def _write_version(
    db: Database, workspace: str, slug: str, system_prompt: str | None, config: dict[str, Any], creator: Creator
) -> None:
    now = datetime.now(UTC)
    version_id = str(uuid.uuid4())
    async with db.change() as conn:
        q = select(presets.c.id).where(presets.c.workspace_id == workspace, presets.c.slug == slug).with_for_update()
        preset_id = (await conn.execute(q)).scalar()
        if preset_id is None:
            preset_id, number = str(uuid.uuid4()), 1
            await conn.execute(
                presets.insert().values(
                    id=preset_id, workspace_id=workspace, slug=slug, name=slug, description=None, status="active",
                    status_updated_at=None, designated_version_id=version_id, creator_user_id=creator.user_id,
                    created_at=now, updated_at=now,
                )
            )  # fmt: skip
        else:
            last = select(func.max(preset_versions.c.version)).where(preset_versions.c.preset_id == preset_id)
            number = int((await conn.execute(last)).scalar() or 0) + 1
            await conn.execute(
                update(presets)
                .where(presets.c.id == preset_id)
                .values(designated_version_id=version_id, updated_at=now)
            )
        await conn.execute(
            preset_versions.insert().values(
                id=version_id, preset_id=preset_id, version=number, system_prompt=system_prompt, config=config,
                creator_id=creator.id, created_at=now,
            )
        )  # fmt: skip
        await repo.bump_version(conn)  # every worker reloads its presets


async def _preset_row(conn: Any, workspace: str, slug: str) -> Any:
    if not SLUG.fullmatch(slug):
        raise not_found(f"Preset '{slug[:80]}' not found")
    q = select(presets).where(presets.c.workspace_id == workspace, presets.c.slug == slug)
    row = (await conn.execute(q)).first()
    if row is None:
        raise not_found(f"Preset '{slug}' not found")
    return row


async def listed(db: Database, workspace: str, offset: int = 0, limit: int = DEFAULT_LIMIT) -> ListPresetsResponse:
    """A page of the workspace's presets, most recently updated first."""
    async with db.engine.connect() as conn:
        mine = presets.c.workspace_id == workspace
        total = int((await conn.execute(select(func.count()).select_from(presets).where(mine))).scalar() or 0)
        q = select(presets).where(mine).order_by(presets.c.updated_at.desc(), presets.c.id).offset(offset).limit(limit)
        rows = (await conn.execute(q)).all()
    return ListPresetsResponse(data=[Preset(**_fields(r)) for r in rows], total_count=total)


async def get(db: Database, workspace: str, slug: str) -> PresetWithDesignatedVersion:
    """A preset with its active version."""
    async with db.engine.connect() as conn:
        row = await _preset_row(conn, workspace, slug)
        version = None
        if row.designated_version_id is not None:
            q = select(preset_versions).where(preset_versions.c.id == row.designated_version_id)
            version = (await conn.execute(q)).first()
    return PresetWithDesignatedVersion(
        **_fields(row), designated_version=_version_object(version) if version is not None else None
    )


async def versions(
    db: Database, workspace: str, slug: str, offset: int = 0, limit: int = DEFAULT_LIMIT
) -> ListPresetVersionsResponse:
    """A page of a preset's versions, oldest first."""
    async with db.engine.connect() as conn:
        row = await _preset_row(conn, workspace, slug)
        of = preset_versions.c.preset_id == row.id
        total = int((await conn.execute(select(func.count()).select_from(preset_versions).where(of))).scalar() or 0)
        q = select(preset_versions).where(of).order_by(preset_versions.c.version).offset(offset).limit(limit)
        rows = (await conn.execute(q)).all()
    return ListPresetVersionsResponse(data=[_version_object(r) for r in rows], total_count=total)


async def version(db: Database, workspace: str, slug: str, number: str) -> PresetDesignatedVersion:
    """One version of a preset, by its number (a path segment: anything else is not found)."""
    if not number.isdigit() or len(number) > 9:
        raise not_found(f"Version {number[:20]!r} of preset '{slug[:80]}' not found")
    async with db.engine.connect() as conn:
        row = await _preset_row(conn, workspace, slug)
        q = select(preset_versions).where(
            preset_versions.c.preset_id == row.id, preset_versions.c.version == int(number)
        )
        found = (await conn.execute(q)).first()
    if found is None:
        raise not_found(f"Version {number} of preset '{slug}' not found")
    return _version_object(found)
