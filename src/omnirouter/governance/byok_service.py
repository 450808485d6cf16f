"""BYOK key management shared by the API (/byok) and the CLI (`omnirouter byok`): what a request may
ask for, the rows it stores (the provider key encrypted, governance/byok_crypto.py) and the objects
clients read back (a masked label, never the key)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType
from sqlalchemy import func, select, update

from omnirouter.errors import GatewayError, not_found
from omnirouter.governance.byok_crypto import Keyring, Undecryptable, label, required
from omnirouter.governance.key_service import NO_NUL, OFFSET_MAX, ColumnId, iso
from omnirouter.governance.workspace_service import resolve_id
from omnirouter.store import repo
from omnirouter.store.db import Database
from omnirouter.store.tables import api_keys, byok_keys

PAGE_DEFAULT = 50
PAGE_MAX = 100

Secret = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=8192,
        pattern=NO_NUL,
        description="The provider's API key. Encrypted at rest and never returned in API responses.",
    ),
]
ProviderSlug = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=NO_NUL,
        description=(
            "A provider configured on this instance (GET /providers), bundled or the operator's own: "
            "the slug of the provider the key authenticates against"
        ),
    ),
]
Name = Annotated[str, Meta(max_length=255, pattern=NO_NUL)]
Item = Annotated[str, Meta(min_length=1, max_length=255, pattern=NO_NUL)]
Items = Annotated[list[Item], Meta(max_length=100)]
KeyHashes = Annotated[
    list[Annotated[str, Meta(pattern="^[a-f0-9]{64}$")]],
    Meta(min_length=1, max_length=100, description="Hashes of this instance's API keys; null: any key"),
]
Region = Literal["global", "europe", "us"]


def _check_flags(fallback: Any, byok_only: Any) -> None:
    if fallback is True and byok_only is True:
        raise ValueError("is_fallback and is_byok_only cannot both be true")


class CreateBYOKKey(msgspec.Struct, kw_only=True):
    provider: ProviderSlug
    key: Secret
    name: Name | None = None
    allowed_models: Items | None = None
    allowed_api_key_hashes: KeyHashes | None = None
    allowed_user_ids: Items | None = None
    declared_region: Region | None = None
    declared_zdr: bool | None = None
    disabled: bool = False
    is_fallback: bool = False
    is_required: bool = False
    is_byok_only: bool = False
    workspace_id: ColumnId | UnsetType = UNSET

    def __post_init__(self) -> None:
        _check_flags(self.is_fallback, self.is_byok_only)


class UpdateBYOKKey(msgspec.Struct, kw_only=True):
    key: Secret | UnsetType = UNSET
    name: Name | UnsetType | None = UNSET
    allowed_models: Items | UnsetType | None = UNSET
    allowed_api_key_hashes: KeyHashes | UnsetType | None = UNSET
    allowed_user_ids: Items | UnsetType | None = UNSET
    declared_region: Region | UnsetType | None = UNSET
    declared_zdr: bool | UnsetType | None = UNSET
    disabled: bool | UnsetType = UNSET
    is_fallback: bool | UnsetType = UNSET
    is_required: bool | UnsetType = UNSET
    is_byok_only: bool | UnsetType = UNSET

    def __post_init__(self) -> None:
        _check_flags(self.is_fallback, self.is_byok_only)


class BYOKKey(msgspec.Struct, kw_only=True):
    """A BYOK credential as clients read it: a masked label, never the key."""

    id: str
    provider: str
    workspace_id: str | None
    name: str | None
    label: Annotated[str, Meta(description="A masked snippet of the key, e.g. sk-...AbCd")]
    disabled: bool
    is_fallback: bool
    is_required: bool
    is_byok_only: bool
    allowed_models: list[str] | None
    allowed_api_key_hashes: list[str] | None
    allowed_user_ids: list[str] | None
    declared_region: Region | None
    declared_zdr: bool | None
    sort_order: Annotated[int, Meta(description="Keys of a provider are tried in ascending sort_order")]
    created_at: str
    updated_at: str | None


class BYOKKeyResponse(msgspec.Struct):
    data: BYOKKey


class BYOKKeyListResponse(msgspec.Struct):
    data: list[BYOKKey]
    total_count: int


class DeleteBYOKKeyResponse(msgspec.Struct):
    deleted: Literal[True]


class BYOKQuery(msgspec.Struct, kw_only=True):
    offset: Annotated[int, Meta(ge=0, le=OFFSET_MAX)] | UnsetType = UNSET
    limit: Annotated[int, Meta(ge=1, le=PAGE_MAX, description="At most 100; 50 by default")] | UnsetType = UNSET
    workspace_id: str | UnsetType = UNSET
    provider: str | UnsetType = UNSET


@dataclass
class ByokRow:
    """A stored BYOK key (its secret still encrypted)."""

    id: str
    workspace_id: str
    provider: str
    name: str | None
    label: str
    secret: str
    sort_order: int
    allowed_models: list[str] | None
    allowed_api_key_hashes: list[str] | None
    allowed_user_ids: list[str] | None
    declared_region: str | None
    declared_zdr: bool | None
    disabled: bool
    is_fallback: bool
    is_required: bool
    is_byok_only: bool
    created_at: datetime
    updated_at: datetime | None

    def __repr__(self) -> str:  # the encrypted secret stays out of logs too
        return f"ByokRow(id={self.id!r}, provider={self.provider!r}, label={self.label!r})"

    @classmethod
    def of(cls, row: Any) -> ByokRow:
        m = row._mapping
        return cls(**{f: m[f] for f in cls.__dataclass_fields__})


def default_workspace() -> str:
    from omnirouter.governance.workspaces import DEFAULT_WORKSPACE_ID

    return DEFAULT_WORKSPACE_ID


def byok_object(row: ByokRow) -> BYOKKey:
    return BYOKKey(
        id=row.id,
        provider=row.provider,
        workspace_id=row.workspace_id,
        name=row.name,
        label=row.label,
        disabled=row.disabled,
        is_fallback=row.is_fallback,
        is_required=row.is_required,
        is_byok_only=row.is_byok_only,
        allowed_models=row.allowed_models,
        allowed_api_key_hashes=row.allowed_api_key_hashes,
        allowed_user_ids=row.allowed_user_ids,
        declared_region=row.declared_region,  # type: ignore[arg-type]
        declared_zdr=row.declared_zdr,
        sort_order=row.sort_order,
        created_at=iso(row.created_at) or "",
        updated_at=iso(row.updated_at),
    )


def _check_provider(provider: str, providers: Collection[str]) -> None:
    if provider not in providers:
        raise GatewayError(
            400,
            f"Unknown provider {provider!r}: BYOK keys are for a provider configured here, one of {sorted(providers)}",
        )


async def _check_key_hashes(conn: Any, hashes: list[str] | None) -> None:
    if not hashes:
        return
    c = api_keys.c
    found = set((await conn.execute(select(c.hash).where(c.hash.in_(hashes), c.deleted.is_(False)))).scalars())
    if missing := [h for h in hashes if h not in found]:
        raise GatewayError(400, f"allowed_api_key_hashes names keys that do not exist: {missing}")


def _live() -> Any:
    return byok_keys.c.deleted.is_(False)


async def create(db: Database, keyring: Keyring | None, body: CreateBYOKKey, providers: Collection[str]) -> ByokRow:
    ring = required(keyring)
    _check_provider(body.provider, providers)
    now = datetime.now(UTC)
    c = byok_keys.c
    async with db.change() as conn:
        workspace = default_workspace()
        if body.workspace_id is not UNSET:  # by id or slug, as /keys takes it
            workspace = await resolve_id(conn, body.workspace_id) or ""
            if not workspace:
                raise GatewayError(
                    400, f"workspace_id: no workspace {body.workspace_id!r} (create it with POST /workspaces)"
                )
        await _check_key_hashes(conn, body.allowed_api_key_hashes)
        last = (
            await conn.execute(
                select(func.max(c.sort_order)).where(c.workspace_id == workspace, c.provider == body.provider, _live())
            )
        ).scalar()
        values = {
            "id": str(uuid.uuid4()),
            "workspace_id": workspace,
            "provider": body.provider,
            "name": body.name,
            "label": label(body.key),
            "secret": ring.encrypt(body.key),
            "sort_order": 0 if last is None else last + 1,
            "allowed_models": body.allowed_models,
            "allowed_api_key_hashes": body.allowed_api_key_hashes,
            "allowed_user_ids": body.allowed_user_ids,
            "declared_region": body.declared_region,
            "declared_zdr": body.declared_zdr,
            "disabled": body.disabled,
            "is_fallback": body.is_fallback,
            "is_required": body.is_required,
            "is_byok_only": body.is_byok_only,
            "deleted": False,
            "created_at": now,
            "updated_at": None,
        }
        await conn.execute(byok_keys.insert().values(**values))
        await repo.bump_version(conn)
    values.pop("deleted")
    return ByokRow(**values)


async def listed(
    db: Database,
    *,
    workspace_id: str | None = None,
    provider: str | None = None,
    offset: int = 0,
    limit: int = PAGE_DEFAULT,
) -> tuple[list[ByokRow], int]:
    """One page of a workspace's BYOK keys (the default workspace's when none is named), by provider
    then sort_order, and how many there are in all."""
    if not 0 <= offset <= OFFSET_MAX:
        raise GatewayError(400, f"offset must be between 0 and {OFFSET_MAX}")
    if not 1 <= limit <= PAGE_MAX:
        raise GatewayError(400, f"limit must be between 1 and {PAGE_MAX}")
    c = byok_keys.c
    async with db.engine.connect() as conn:
        # By id or slug; a workspace that does not exist has no keys.
        workspace = (await resolve_id(conn, workspace_id) or "") if workspace_id else default_workspace()
        where = [_live(), c.workspace_id == workspace]
        if provider:  # (a NUL, which PostgreSQL's text cannot hold, matches nothing: no provider has one)
            where.append(c.provider == provider.replace("\x00", "\ufffd"))
        total = (await conn.execute(select(func.count()).select_from(byok_keys).where(*where))).scalar() or 0
        rows = await conn.execute(
            select(byok_keys)
            .where(*where)
            .order_by(c.provider, c.sort_order, c.created_at, c.id)
            .offset(offset)
            .limit(limit)
        )
        return [ByokRow.of(r) for r in rows], int(total)


async def get(db: Database, id_: str) -> ByokRow:
    try:
        uuid.UUID(id_)
    except ValueError:
        raise not_found("BYOK key not found") from None
    async with db.engine.connect() as conn:
        row = (await conn.execute(select(byok_keys).where(byok_keys.c.id == id_, _live()))).first()
    if row is None:
        raise not_found("BYOK key not found")
    return ByokRow.of(row)


async def update_key(db: Database, keyring: Keyring | None, row: ByokRow, body: UpdateBYOKKey) -> ByokRow:
    changes: dict[str, Any] = {
        f: getattr(body, f) for f in body.__struct_fields__ if f != "key" and getattr(body, f) is not UNSET
    }
    fallback = changes.get("is_fallback", row.is_fallback)
    if fallback and changes.get("is_byok_only", row.is_byok_only):
        raise GatewayError(400, "is_fallback and is_byok_only cannot both be true")
    if body.key is not UNSET:
        changes["secret"] = required(keyring).encrypt(body.key)
        changes["label"] = label(body.key)
    if not changes:
        return row
    changes["updated_at"] = datetime.now(UTC)
    async with db.change() as conn:
        await _check_key_hashes(conn, changes.get("allowed_api_key_hashes"))
        await conn.execute(update(byok_keys).where(byok_keys.c.id == row.id).values(**changes))
        await repo.bump_version(conn)
    for f, v in changes.items():
        setattr(row, f, v)
    return row


async def delete(db: Database, row: ByokRow) -> None:
    """Soft delete, as OpenRouter's: the row stays, marked deleted, its encrypted key wiped."""
    async with db.change() as conn:
        await conn.execute(
            update(byok_keys)
            .where(byok_keys.c.id == row.id)
            .values(deleted=True, secret="", updated_at=datetime.now(UTC))
        )
        await repo.bump_version(conn)


async def drop_workspace(conn: Any, workspace_id: str) -> None:
    """A deleted workspace's BYOK keys go with it (workspace_service.delete_workspace), secrets wiped."""
    c = byok_keys.c
    await conn.execute(
        update(byok_keys)
        .where(c.workspace_id == workspace_id, _live())
        .values(deleted=True, secret="", updated_at=datetime.now(UTC))
    )


async def rotate(db: Database, keyring: Keyring | None) -> tuple[int, list[str]]:
    """Re-encrypt every stored key with the newest encryption key: (how many were, the ids of those no
    configured key opens). Run after putting a new key first in OMNIROUTER_ENCRYPTION_KEY; once it
    reports none left over, the old keys can be removed from the setting."""
    ring = required(keyring)
    done, stuck = 0, []
    c = byok_keys.c
    async with db.change() as conn:
        rows = (await conn.execute(select(c.id, c.secret).where(_live()))).all()
        for id_, token in rows:
            try:
                fresh = ring.rotate(token)
            except Undecryptable:
                stuck.append(id_)
                continue
            await conn.execute(update(byok_keys).where(c.id == id_).values(secret=fresh))
            done += 1
        await repo.bump_version(conn)
    return done, stuck
