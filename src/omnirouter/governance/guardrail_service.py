"""Guardrail management shared by the API (/guardrails*) and the CLI (`omnirouter guardrails`): what a
request may ask for, what is stored, and the objects clients read back (behaviors §10.1)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
import sqlalchemy as sa
from msgspec import UNSET, Meta, UnsetType
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from omnirouter.catalog.catalog import Catalog, split_variants
from omnirouter.errors import GatewayError, not_found
from omnirouter.governance import content_filters as cf
from omnirouter.governance.guardrails import DEFAULT_WORKSPACE_ID, default_guardrail_id
from omnirouter.governance.key_service import NO_NUL, OFFSET_MAX, Limit, _check_limit, iso
from omnirouter.jsonio import money
from omnirouter.store import repo
from omnirouter.store.db import Database
from omnirouter.store.tables import api_keys, guardrail_key_assignments, guardrail_member_assignments, guardrails

# This server is one organisation (MemberAssignment.organization_id).
ORGANIZATION_ID = "org_omnirouter"
DEFAULT_LIMIT, MAX_LIMIT = 50, 100
MAX_LIST = 1000  # entries of a model or provider list, filters of a guardrail, ids of a bulk request

# Other parts' tables, by name (the workspaces part owns them).
_workspaces = sa.table("workspaces", sa.column("id", sa.String))
_members = sa.table("members", sa.column("id", sa.String))

Interval = Literal["daily", "weekly", "monthly"]
Ident = Annotated[str, Meta(min_length=1, max_length=255, pattern=NO_NUL)]
IdList = Annotated[list[Ident], Meta(min_length=1, max_length=MAX_LIST)]
BuiltinSlug = Literal[
    "email", "phone", "ssn", "credit-card", "ip-address", "secrets", "person-name", "address", "regex-prompt-injection"
]
Action = Literal["redact", "block", "flag"]
ZDR_GROUPS = ("anthropic", "openai", "google", "xai", "other")
FLAGS = (
    "enforce_zdr",
    *(f"enforce_zdr_{g}" for g in ZDR_GROUPS),
    "enable_free_model_publication",
    "enable_free_model_training",
    "enable_paid_model_training",
)
LISTS = ("allowed_models", "ignored_models", "allowed_providers", "ignored_providers")


class ContentFilterEntry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A custom regex filter (JavaScript syntax; no lookarounds, backreferences or nested quantifiers)."""

    # The length is checked with the syntax (check_pattern), so that the 400 carries invalid_regex_pattern.
    pattern: Annotated[str, Meta(min_length=1, extra_json_schema={"maxLength": cf.MAX_PATTERN_CHARS})]
    action: Action
    label: Annotated[str, Meta(max_length=100, pattern=NO_NUL)] | None = None


class ContentFilterBuiltinEntryInput(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    slug: BuiltinSlug
    action: Action
    label: Annotated[str, Meta(max_length=100, description="Ignored: labels are system-assigned")] | UnsetType = UNSET
    scan_scope: Literal["user_only", "all_messages"] | UnsetType = UNSET


Models = Annotated[list[Ident], Meta(min_length=1, max_length=MAX_LIST)]
Filters = Annotated[list[ContentFilterEntry], Meta(max_length=MAX_LIST)]
Builtins = Annotated[list[ContentFilterBuiltinEntryInput], Meta(max_length=len(cf.BUILTINS) + 2)]
Description = Annotated[str, Meta(max_length=1000, pattern=NO_NUL)]
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=NO_NUL)]
Flag = bool | None | UnsetType


class _Fields(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    description: Description | UnsetType | None = UNSET
    limit_usd: Limit | UnsetType | None = UNSET
    reset_interval: Interval | UnsetType | None = UNSET
    include_byok_in_budgets: bool | UnsetType = UNSET
    allowed_models: Models | UnsetType | None = UNSET
    ignored_models: Models | UnsetType | None = UNSET
    allowed_providers: Models | UnsetType | None = UNSET
    ignored_providers: Models | UnsetType | None = UNSET
    enforce_zdr: Annotated[bool | None, Meta(description="Deprecated: copied into the per-group flags not given")] | (
        UnsetType
    ) = UNSET
    enforce_zdr_anthropic: Flag = UNSET
    enforce_zdr_openai: Flag = UNSET
    enforce_zdr_google: Flag = UNSET
    enforce_zdr_xai: Flag = UNSET
    enforce_zdr_other: Flag = UNSET
    enable_free_model_publication: Flag = UNSET
    enable_free_model_training: Flag = UNSET
    enable_paid_model_training: Flag = UNSET
    content_filters: Filters | UnsetType | None = UNSET
    content_filter_builtins: Builtins | UnsetType | None = UNSET

    def __post_init__(self) -> None:
        if isinstance(self.limit_usd, Decimal):
            _check_limit(self.limit_usd)


class CreateGuardrail(_Fields, kw_only=True, forbid_unknown_fields=True):
    name: Name
    workspace_id: Annotated[str, Meta(min_length=1, max_length=64, pattern=NO_NUL)] | UnsetType = UNSET


class UpdateGuardrail(_Fields, kw_only=True, forbid_unknown_fields=True):
    """PATCH: collection fields are replaced whole (send the full set)."""

    name: Name | UnsetType = UNSET


class BulkKeys(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    key_hashes: IdList


class BulkMembers(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    member_user_ids: IdList


def parse(raw: bytes, kind: type[msgspec.Struct]) -> Any:
    try:
        return msgspec.json.decode(raw or b"", type=kind)
    except msgspec.ValidationError as exc:
        raise GatewayError(400, f"Invalid request: {exc}") from None
    except msgspec.DecodeError:
        raise GatewayError(400, "Invalid JSON in request body") from None


# -- what is stored


def _changes(body: _Fields) -> dict[str, Any]:
    """The columns a create or update sets, validated (regexes compiled here: a bad one is a 400 now,
    never a failure at request time)."""
    out: dict[str, Any] = {}
    for name in body.__struct_fields__:
        value = getattr(body, name)
        if value is UNSET or name == "workspace_id":
            continue
        if name == "content_filters":
            for entry in value or ():
                cf.check_pattern(entry.pattern)
            value = [msgspec.to_builtins(e) for e in value] if value is not None else None
        elif name == "content_filter_builtins":
            if value is not None:
                unsupported = sorted({e.slug for e in value} & cf.UNSUPPORTED_BUILTINS)
                if unsupported:
                    raise GatewayError(
                        400,
                        f"Builtin content filter {', '.join(unsupported)} is not available on this server "
                        "(it needs a named-entity model); use a custom regex filter instead",
                    )
                slugs = [e.slug for e in value]
                if len(set(slugs)) != len(slugs):
                    raise GatewayError(400, "Each builtin content filter may appear once in content_filter_builtins")
                value = [{"slug": e.slug, "action": e.action, **_scope(e)} for e in value]
        elif name in LISTS and value is not None:
            value = list(dict.fromkeys(value))
        out[name] = value
    # The deprecated flag fills the per-group flags the request does not set itself (§10.1).
    zdr = getattr(body, "enforce_zdr", UNSET)
    if zdr is not UNSET:
        for group in ZDR_GROUPS:
            out.setdefault(f"enforce_zdr_{group}", zdr)
    return out


def check_references(values: dict[str, Any], catalog: Catalog | None) -> None:
    """Model and provider ids must name what this instance knows (a typo in an allow-list would
    otherwise block everything). Unchecked without a catalog."""
    if catalog is None:
        return
    known = {p.slug.lower() for p in catalog.providers.values()} | {p.name.lower() for p in catalog.providers.values()}
    for name in ("allowed_providers", "ignored_providers"):
        unknown = [p for p in values.get(name) or () if p.lower() not in known and p.split("/")[0].lower() not in known]
        if unknown:
            raise GatewayError(
                400, f"Unknown provider {unknown[0]!r} in {name}: configured providers are {sorted(catalog.providers)}"
            )
    for name in ("allowed_models", "ignored_models"):
        unknown = [m for m in values.get(name) or () if catalog.model(split_variants(m)[0]) is None]
        if unknown:
            raise GatewayError(400, f"Unknown model {unknown[0]!r} in {name}: not in this instance's catalog")


def _scope(entry: ContentFilterBuiltinEntryInput) -> dict[str, Any]:
    if entry.slug != "regex-prompt-injection" or entry.scan_scope is UNSET:
        return {}
    return {"scan_scope": entry.scan_scope}


def guardrail_object(row: Any) -> dict[str, Any]:
    """A guardrail as the API shows it (the Guardrail schema)."""
    builtins = row.content_filter_builtins
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "workspace_id": row.workspace_id,
        "limit_usd": money(row.limit_usd),
        "reset_interval": row.reset_interval,
        "include_byok_in_budgets": row.include_byok_in_budgets,
        **{name: getattr(row, name) for name in LISTS},
        **{name: getattr(row, name) for name in FLAGS},
        "content_filters": [{"label": None, **e} for e in row.content_filters]
        if row.content_filters is not None
        else None,
        "content_filter_builtins": [{**e, "label": cf.BUILTINS[e["slug"]].label} for e in builtins]
        if builtins is not None
        else None,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def _page(offset: int | None, limit: int | None) -> tuple[int, int]:
    offset = 0 if offset is None else offset
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 0 <= offset <= OFFSET_MAX:
        raise GatewayError(400, f"offset must be between 0 and {OFFSET_MAX}")
    if not 1 <= limit <= MAX_LIMIT:
        raise GatewayError(400, f"limit must be between 1 and {MAX_LIMIT}")
    return offset, limit


async def _workspace_exists(conn: AsyncConnection, workspace_id: str) -> bool:
    found = await conn.execute(sa.select(_workspaces.c.id).where(_workspaces.c.id == workspace_id))
    return found.first() is not None


async def _row(conn: AsyncConnection, guardrail_id: str) -> Any:
    return (await conn.execute(sa.select(guardrails).where(guardrails.c.id == guardrail_id))).first()


def _duplicate(name: str) -> GatewayError:
    return GatewayError(409, f"A guardrail named {name!r} already exists in this workspace")


# -- operations


async def create(db: Database, body: CreateGuardrail, catalog: Catalog | None = None) -> dict[str, Any]:
    values = _changes(body)
    check_references(values, catalog)
    workspace = body.workspace_id if body.workspace_id is not UNSET else DEFAULT_WORKSPACE_ID
    now = datetime.now(UTC)
    row = {
        "id": str(uuid.uuid4()),
        "name": body.name,
        "workspace_id": workspace,
        "workspace_default": False,
        "include_byok_in_budgets": False,
        "created_at": now,
        "updated_at": None,
        **values,
    }
    try:
        async with db.change() as conn:
            if not await _workspace_exists(conn, workspace):
                raise GatewayError(400, f"Workspace {workspace!r} does not exist")
            if await _name_taken(conn, workspace, body.name, None):
                raise _duplicate(body.name)
            await conn.execute(sa.insert(guardrails).values(row))
            await repo.bump_version(conn)
            stored = await _row(conn, row["id"])
    except IntegrityError:  # a concurrent create of the same name
        raise _duplicate(body.name) from None
    return guardrail_object(stored)


async def _name_taken(conn: AsyncConnection, workspace: str, name: str, other_than: str | None) -> bool:
    query = sa.select(guardrails.c.id).where(guardrails.c.workspace_id == workspace, guardrails.c.name == name)
    if other_than is not None:
        query = query.where(guardrails.c.id != other_than)
    return (await conn.execute(query)).first() is not None


async def listed(
    db: Database, *, workspace_id: str | None = None, offset: int | None = None, limit: int | None = None
) -> tuple[list[dict[str, Any]], int]:
    """One page of a workspace's guardrails (the default workspace's when none is named), oldest first."""
    offset, limit = _page(offset, limit)
    where = guardrails.c.workspace_id == (workspace_id or DEFAULT_WORKSPACE_ID)
    async with db.engine.connect() as conn:
        total = (await conn.execute(sa.select(sa.func.count()).select_from(guardrails).where(where))).scalar_one()
        rows = await conn.execute(
            sa.select(guardrails)
            .where(where)
            .order_by(guardrails.c.created_at, guardrails.c.id)
            .offset(offset)
            .limit(limit)
        )
        return [guardrail_object(r) for r in rows], int(total)


def _well_formed(guardrail_id: str) -> bool:
    try:
        uuid.UUID(guardrail_id)
    except ValueError:
        return False
    return len(guardrail_id) == 36


async def get(db: Database, guardrail_id: str) -> dict[str, Any]:
    async with db.engine.connect() as conn:
        row = await _row(conn, guardrail_id) if _well_formed(guardrail_id) else None
    if row is None:
        raise not_found("Guardrail not found")
    return guardrail_object(row)


async def _workspace_of_default(conn: AsyncConnection, guardrail_id: str) -> str | None:
    """The workspace whose (not yet configured) default guardrail has this id, if any."""
    for (wid,) in await conn.execute(sa.select(_workspaces.c.id)):
        if default_guardrail_id(wid) == guardrail_id:
            return str(wid)
    return None


async def update(
    db: Database, guardrail_id: str, body: UpdateGuardrail, catalog: Catalog | None = None
) -> dict[str, Any]:
    """Change a guardrail, or configure (materialize) a workspace's default guardrail."""
    values = _changes(body)
    check_references(values, catalog)
    now = datetime.now(UTC)
    if not _well_formed(guardrail_id):
        raise not_found("Guardrail not found")
    try:
        async with db.change() as conn:
            row = await _row(conn, guardrail_id)
            if row is None:
                workspace = await _workspace_of_default(conn, guardrail_id)
                if workspace is None:
                    raise not_found("Guardrail not found")
                name = default_name(workspace)
                if body.name is not UNSET and body.name != name:
                    raise GatewayError(400, "A workspace default guardrail's name is derived from its workspace")
                values.pop("name", None)
                await conn.execute(
                    sa.insert(guardrails).values(
                        id=guardrail_id, name=name, workspace_id=workspace, workspace_default=True,
                        include_byok_in_budgets=False, created_at=now, updated_at=now, **values,
                    )
                )  # fmt: skip
            else:
                if "name" in values and row.workspace_default and values["name"] != row.name:
                    raise GatewayError(400, "A workspace default guardrail's name is derived from its workspace")
                if "name" in values and await _name_taken(conn, row.workspace_id, values["name"], guardrail_id):
                    raise _duplicate(values["name"])
                await conn.execute(
                    sa.update(guardrails).where(guardrails.c.id == guardrail_id).values(**values, updated_at=now)
                )
            await repo.bump_version(conn)
            stored = await _row(conn, guardrail_id)
    except IntegrityError:
        raise _duplicate(str(values.get("name"))) from None
    return guardrail_object(stored)


def default_name(workspace_id: str) -> str:
    return f"Workspace {workspace_id} Default"


async def delete(db: Database, guardrail_id: str) -> None:
    """Delete a guardrail and its assignments (a workspace default goes back to unconfigured)."""
    if not _well_formed(guardrail_id):
        raise not_found("Guardrail not found")
    async with db.change() as conn:
        gone = await conn.execute(sa.delete(guardrails).where(guardrails.c.id == guardrail_id))
        if not gone.rowcount:
            raise not_found("Guardrail not found")
        for table in (guardrail_key_assignments, guardrail_member_assignments):
            await conn.execute(sa.delete(table).where(table.c.guardrail_id == guardrail_id))
        await repo.bump_version(conn)


async def _existing(conn: AsyncConnection, guardrail_id: str) -> Any:
    row = await _row(conn, guardrail_id) if _well_formed(guardrail_id) else None
    if row is None:
        raise not_found("Guardrail not found")
    return row


def _unknown(kind: str, missing: list[str]) -> GatewayError:
    shown = ", ".join(m[:80] for m in missing[:5]) + (" ..." if len(missing) > 5 else "")
    return GatewayError(404, f"{kind} not found: {shown}", {"missing": missing[:100]})


async def _known_keys(conn: AsyncConnection, hashes: list[str]) -> None:
    found = {
        h
        for (h,) in await conn.execute(
            sa.select(api_keys.c.hash).where(
                api_keys.c.hash.in_(hashes), api_keys.c.deleted.is_(False), api_keys.c.is_management.is_(False)
            )
        )
    }
    if missing := [h for h in hashes if h not in found]:
        raise _unknown("API key", missing)


async def _known_members(conn: AsyncConnection, user_ids: list[str]) -> None:
    found = {u for (u,) in await conn.execute(sa.select(_members.c.id).where(_members.c.id.in_(user_ids)))}
    if missing := [u for u in user_ids if u not in found]:
        raise _unknown("Member", missing)


async def assign_keys(db: Database, guardrail_id: str, body: BulkKeys, assigned_by: str | None = None) -> int:
    """Assign keys (each key's previous direct guardrail, if any, is replaced); all or nothing."""
    hashes = list(dict.fromkeys(body.key_hashes))
    return await _assign(db, guardrail_id, hashes, assigned_by, guardrail_key_assignments, "key_hash", _known_keys)


async def assign_members(db: Database, guardrail_id: str, body: BulkMembers, assigned_by: str | None = None) -> int:
    ids = list(dict.fromkeys(body.member_user_ids))
    return await _assign(db, guardrail_id, ids, assigned_by, guardrail_member_assignments, "user_id", _known_members)


async def _assign(db: Database, guardrail_id: str, ids: list[str], assigned_by: str | None, table: sa.Table,
                  column: str, check: Any) -> int:  # fmt: skip
    now = datetime.now(UTC)
    try:
        async with db.change() as conn:
            await _existing(conn, guardrail_id)
            await check(conn, ids)
            await conn.execute(sa.delete(table).where(table.c[column].in_(ids)))
            rows = [
                {"id": str(uuid.uuid4()), "guardrail_id": guardrail_id, column: i, "assigned_by": assigned_by,
                 "created_at": now}
                for i in ids
            ]  # fmt: skip
            await conn.execute(sa.insert(table), rows)
            await repo.bump_version(conn)
    except IntegrityError:  # the same key or member assigned concurrently elsewhere: nothing written here
        raise GatewayError(409, "A concurrent assignment changed these assignments; retry") from None
    return len(ids)


async def unassign_keys(db: Database, guardrail_id: str, body: BulkKeys) -> int:
    hashes = list(dict.fromkeys(body.key_hashes))
    return await _unassign(db, guardrail_id, hashes, guardrail_key_assignments, "key_hash", _known_keys)


async def unassign_members(db: Database, guardrail_id: str, body: BulkMembers) -> int:
    ids = list(dict.fromkeys(body.member_user_ids))
    return await _unassign(db, guardrail_id, ids, guardrail_member_assignments, "user_id", _known_members)


async def _unassign(db: Database, guardrail_id: str, ids: list[str], table: sa.Table, column: str, check: Any) -> int:
    async with db.change() as conn:
        await _existing(conn, guardrail_id)
        await check(conn, ids)
        gone = await conn.execute(
            sa.delete(table).where(table.c.guardrail_id == guardrail_id, table.c[column].in_(ids))
        )
        await repo.bump_version(conn)
    return int(gone.rowcount or 0)


async def key_assignments(
    db: Database, guardrail_id: str | None = None, *, offset: int | None = None, limit: int | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Key assignments (of one guardrail, or all), oldest first; deleted keys' are left out."""
    offset, limit = _page(offset, limit)
    t = guardrail_key_assignments
    where = [api_keys.c.deleted.is_(False)]
    async with db.engine.connect() as conn:
        if guardrail_id is not None:
            await _existing(conn, guardrail_id)
            where.append(t.c.guardrail_id == guardrail_id)
        joined = t.join(api_keys, api_keys.c.hash == t.c.key_hash)
        total = (await conn.execute(sa.select(sa.func.count()).select_from(joined).where(*where))).scalar_one()
        rows = await conn.execute(
            sa.select(t, api_keys.c.name, api_keys.c.label)
            .select_from(joined)
            .where(*where)
            .order_by(t.c.created_at, t.c.id)
            .offset(offset)
            .limit(limit)
        )
        data = [
            {
                "id": r.id,
                "key_hash": r.key_hash,
                "guardrail_id": r.guardrail_id,
                "key_name": r.name,
                "key_label": r.label,
                "assigned_by": r.assigned_by,
                "created_at": iso(r.created_at),
            }
            for r in rows
        ]
    return data, int(total)


async def member_assignments(
    db: Database, guardrail_id: str | None = None, *, offset: int | None = None, limit: int | None = None
) -> tuple[list[dict[str, Any]], int]:
    offset, limit = _page(offset, limit)
    t = guardrail_member_assignments
    where = []
    async with db.engine.connect() as conn:
        if guardrail_id is not None:
            await _existing(conn, guardrail_id)
            where.append(t.c.guardrail_id == guardrail_id)
        total = (await conn.execute(sa.select(sa.func.count()).select_from(t).where(*where))).scalar_one()
        rows = await conn.execute(
            sa.select(t).where(*where).order_by(t.c.created_at, t.c.id).offset(offset).limit(limit)
        )
        data = [
            {
                "id": r.id,
                "user_id": r.user_id,
                "organization_id": ORGANIZATION_ID,
                "guardrail_id": r.guardrail_id,
                "assigned_by": r.assigned_by,
                "created_at": iso(r.created_at),
            }
            for r in rows
        ]
    return data, int(total)
