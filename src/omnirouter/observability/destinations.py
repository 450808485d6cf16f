"""Observability destinations (/observability/destinations): what a request may ask for, the rows
stored (secret config fields encrypted with the BYOK keyring, governance/byok_crypto.py) and the
objects clients read back (secrets masked, with the deliverer's counts)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from omnirouter.errors import GatewayError, not_found
from omnirouter.governance.byok_crypto import SETTING, Keyring, Undecryptable, label
from omnirouter.governance.key_service import NO_NUL, OFFSET_MAX, ColumnId, iso
from omnirouter.governance.workspace_service import resolve_id
from omnirouter.governance.workspaces import DEFAULT_WORKSPACE_ID
from omnirouter.observability import kinds
from omnirouter.store.db import Database
from omnirouter.store.tables import observability_destinations as destinations
from omnirouter.store.tables import observability_outbox as outbox

PAGE_DEFAULT = 50
PAGE_MAX = 100
PER_TYPE_MAX = 5  # per workspace, as OpenRouter's
NOT_CONFIGURED = (
    f"Observability destinations need {SETTING}: set it to a Fernet key (make one with "
    "`omnirouter byok new-encryption-key`) so that their credentials can be stored encrypted"
)

Name = Annotated[str, Meta(min_length=1, max_length=255, pattern=NO_NUL)]
Rate = Annotated[float, Meta(ge=0.0001, le=1, description="Sampling rate between 0.0001 and 1 (1 = 100%).")]
KeyHashes = Annotated[
    list[Annotated[str, Meta(pattern="^[a-f0-9]{64}$")]],
    Meta(
        min_length=1, max_length=100, description="Hashes of this instance's API keys whose traffic is sent; null: all"
    ),
]
Region = Literal["global", "europe", "us"]
RegionInput = Literal["global", "europe", "eu", "us"]
Regions = Annotated[
    list[RegionInput],
    Meta(min_length=1, max_length=3, description="OpenRouter's data regions, kept as given (`eu` is `europe`); "
         "this gateway is one region, so every destination receives its traffic"),
]  # fmt: skip
DestinationType = Literal[kinds.DOCUMENTED]  # type: ignore[valid-type]
RuleField = Literal[
    "model", "provider", "session_id", "user_id", "api_key_name", "finish_reason", "input", "output",
    "total_cost", "total_tokens", "prompt_tokens", "completion_tokens",
]  # fmt: skip
RuleOperator = Literal[
    "equals", "not_equals", "contains", "not_contains", "regex", "starts_with", "ends_with",
    "gt", "lt", "gte", "lte", "exists", "not_exists",
]  # fmt: skip


class FilterRule(msgspec.Struct, kw_only=True, omit_defaults=True):
    field: RuleField
    operator: RuleOperator
    value: Annotated[str, Meta(max_length=1000)] | float | UnsetType = UNSET


class FilterRuleGroup(msgspec.Struct, kw_only=True):
    logic: Literal["and", "or"] = "and"
    rules: Annotated[list[FilterRule], Meta(max_length=50)]


class FilterRules(msgspec.Struct, kw_only=True):
    """Which events are sent: those matching any group (a group's rules joined by its logic)."""

    enabled: bool = True
    groups: Annotated[list[FilterRuleGroup], Meta(max_length=20)]


class CreateDestination(msgspec.Struct, kw_only=True):
    type: DestinationType
    name: Name
    config: dict[str, Any]
    enabled: bool = True
    privacy_mode: bool = False
    broadcast_generation_cost: bool = False
    broadcast_generation_identity: bool = False
    broadcast_generation_request_context: bool = False
    broadcast_generation_cost_allocation: bool = False
    regions: Regions = msgspec.field(default_factory=lambda: ["global"])
    sampling_rate: Rate = 1.0
    api_key_hashes: KeyHashes | None = None
    filter_rules: FilterRules | None = None
    workspace_id: ColumnId | UnsetType = UNSET


class UpdateDestination(msgspec.Struct, kw_only=True):
    name: Name | UnsetType = UNSET
    config: dict[str, Any] | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    privacy_mode: bool | UnsetType = UNSET
    broadcast_generation_cost: bool | UnsetType = UNSET
    broadcast_generation_identity: bool | UnsetType = UNSET
    broadcast_generation_request_context: bool | UnsetType = UNSET
    broadcast_generation_cost_allocation: bool | UnsetType = UNSET
    regions: Regions | UnsetType = UNSET
    sampling_rate: Rate | UnsetType = UNSET
    api_key_hashes: KeyHashes | UnsetType | None = UNSET
    filter_rules: FilterRules | UnsetType | None = UNSET


class Delivery(msgspec.Struct, kw_only=True):
    """Omnirouter's: what the deliverer did with this destination's events (every worker's together)."""

    delivered: Annotated[int, Meta(description="Events delivered")]
    failed: Annotated[int, Meta(description="Deliveries that failed (each is retried with backoff)")]
    pending: Annotated[int, Meta(description="Events waiting in the outbox")]
    last_error: Annotated[str | None, Meta(description="The last failure: a status or an error's type")]
    last_delivered_at: str | None


class Destination(msgspec.Struct, kw_only=True):
    id: str
    workspace_id: str
    name: str | None
    type: DestinationType
    enabled: bool
    privacy_mode: bool
    broadcast_generation_cost: bool
    broadcast_generation_identity: bool
    broadcast_generation_request_context: bool
    broadcast_generation_cost_allocation: bool
    regions: list[Region]
    sampling_rate: float
    api_key_hashes: list[str] | None
    filter_rules: FilterRules | None
    config: Annotated[dict[str, Any], Meta(description="The type's configuration; secret fields masked")]
    created_at: str
    updated_at: str
    delivery: Delivery


class DestinationResponse(msgspec.Struct):
    data: Destination


class DestinationListResponse(msgspec.Struct):
    data: list[Destination]
    total_count: int


class DeleteDestinationResponse(msgspec.Struct):
    deleted: Literal[True]


class DestinationQuery(msgspec.Struct, kw_only=True):
    offset: Annotated[int, Meta(ge=0, le=OFFSET_MAX)] | UnsetType = UNSET
    limit: Annotated[int, Meta(ge=1, le=PAGE_MAX, description="At most 100; 50 by default")] | UnsetType = UNSET
    workspace_id: str | UnsetType = UNSET


@dataclass
class Row:
    """A stored destination (its secrets still encrypted)."""

    id: str
    workspace_id: str
    type: str
    name: str
    enabled: bool
    privacy_mode: bool
    broadcast_generation_cost: bool
    broadcast_generation_identity: bool
    broadcast_generation_request_context: bool
    broadcast_generation_cost_allocation: bool
    regions: list[str]
    sampling_rate: float
    api_key_hashes: list[str] | None
    filter_rules: dict[str, Any] | None
    config: dict[str, Any]
    secrets: str
    masked: dict[str, Any]
    delivered_count: int
    failed_count: int
    last_error: str | None
    last_delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def __repr__(self) -> str:  # the encrypted secrets stay out of logs too
        return f"Row(id={self.id!r}, type={self.type!r})"

    @classmethod
    def of(cls, row: Any) -> Row:
        m = row._mapping
        return cls(**{f: m[f] for f in cls.__dataclass_fields__})

    def full_config(self, keyring: Keyring | None) -> dict[str, Any]:
        """The whole config, secrets decrypted (Undecryptable if no configured key opens them)."""
        if keyring is None:
            raise Undecryptable("no encryption key is configured")
        return {**self.config, **json.loads(keyring.decrypt(self.secrets))}


def _mask(hidden: dict[str, Any]) -> dict[str, Any]:
    return {k: {h: label(x) for h, x in v.items()} if isinstance(v, dict) else label(v) for k, v in hidden.items()}


def destination_object(row: Row, pending: int = 0, *, reveal: dict[str, Any] | None = None) -> Destination:
    return Destination(
        id=row.id,
        workspace_id=row.workspace_id,
        name=row.name,
        type=row.type,
        enabled=row.enabled,
        privacy_mode=row.privacy_mode,
        broadcast_generation_cost=row.broadcast_generation_cost,
        broadcast_generation_identity=row.broadcast_generation_identity,
        broadcast_generation_request_context=row.broadcast_generation_request_context,
        broadcast_generation_cost_allocation=row.broadcast_generation_cost_allocation,
        regions=row.regions,  # type: ignore[arg-type]
        sampling_rate=row.sampling_rate,
        api_key_hashes=row.api_key_hashes,
        filter_rules=msgspec.convert(row.filter_rules, FilterRules) if row.filter_rules else None,
        config={**row.config, **row.masked, **(reveal or {})},
        created_at=iso(row.created_at) or "",
        updated_at=iso(row.updated_at) or "",
        delivery=Delivery(
            delivered=row.delivered_count,
            failed=row.failed_count,
            pending=pending,
            last_error=row.last_error,
            last_delivered_at=iso(row.last_delivered_at),
        ),
    )


def _live() -> Any:
    return destinations.c.deleted.is_(False)


def _sealed(keyring: Keyring | None, kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The stored columns of a whole config: plain fields, secrets encrypted, and their masks."""
    if keyring is None:
        raise GatewayError(400, NOT_CONFIGURED)
    plain, hidden = kinds.split(kind, config)
    return {"config": plain, "secrets": keyring.encrypt(json.dumps(hidden)), "masked": _mask(hidden)}


def _regions(given: list[str]) -> list[str]:
    out: list[str] = []
    for region in ("europe" if r == "eu" else r for r in given):
        if region not in out:
            out.append(region)
    return out


def _rules(rules: FilterRules | None) -> dict[str, Any] | None:
    return msgspec.to_builtins(rules) if rules is not None else None


async def _workspace(conn: AsyncConnection, ref: str | None) -> str:
    if ref is None:
        return DEFAULT_WORKSPACE_ID
    found = await resolve_id(conn, ref)
    if not found:
        raise GatewayError(400, f"workspace_id: no workspace {ref!r} (create it with POST /workspaces)")
    return found


async def create(db: Database, keyring: Keyring | None, body: CreateDestination) -> tuple[Row, dict[str, Any]]:
    """The new destination, and what its answer shows in clear once: a webhook's generated secret."""
    config = kinds.validate(body.type, body.config)
    generated = {"secret": config["secret"]} if body.type == "webhook" and "secret" not in body.config else {}
    sealed = _sealed(keyring, body.type, config)
    now = datetime.now(UTC)
    c = destinations.c
    async with db.engine.begin() as conn:
        workspace = await _workspace(conn, None if body.workspace_id is UNSET else body.workspace_id)
        same = select(func.count()).where(c.workspace_id == workspace, c.type == body.type, _live())
        if ((await conn.execute(same)).scalar() or 0) >= PER_TYPE_MAX:
            raise GatewayError(409, f"A workspace may have at most {PER_TYPE_MAX} destinations of type {body.type!r}")
        values = {
            "id": str(uuid.uuid4()),
            "workspace_id": workspace,
            "type": body.type,
            "name": body.name,
            "enabled": body.enabled,
            "privacy_mode": body.privacy_mode,
            "broadcast_generation_cost": body.broadcast_generation_cost,
            "broadcast_generation_identity": body.broadcast_generation_identity,
            "broadcast_generation_request_context": body.broadcast_generation_request_context,
            "broadcast_generation_cost_allocation": body.broadcast_generation_cost_allocation,
            "regions": _regions(body.regions),
            "sampling_rate": body.sampling_rate,
            "api_key_hashes": body.api_key_hashes,
            "filter_rules": _rules(body.filter_rules),
            **sealed,
            "delivered_count": 0,
            "failed_count": 0,
            "last_error": None,
            "last_delivered_at": None,
            "created_at": now,
            "updated_at": now,
        }
        await conn.execute(destinations.insert().values(**values, deleted=False))
    return Row(**values), generated


def _page(offset: int, limit: int) -> None:
    if not 0 <= offset <= OFFSET_MAX:
        raise GatewayError(400, f"offset must be between 0 and {OFFSET_MAX}")
    if not 1 <= limit <= PAGE_MAX:
        raise GatewayError(400, f"limit must be between 1 and {PAGE_MAX}")


async def pending_of(conn: AsyncConnection, ids: list[str]) -> dict[str, int]:
    if not ids:
        return {}
    o = outbox.c
    rows = await conn.execute(
        select(o.destination_id, func.count()).where(o.destination_id.in_(ids)).group_by(o.destination_id)
    )
    return {d: int(n) for d, n in rows}


async def listed(
    db: Database, *, workspace_id: str | None = None, offset: int = 0, limit: int = PAGE_DEFAULT
) -> tuple[list[tuple[Row, int]], int]:
    """One page of a workspace's destinations (the default workspace's when none is named), oldest
    first, each with its pending count, and how many there are in all."""
    _page(offset, limit)
    c = destinations.c
    async with db.engine.connect() as conn:
        # By id or slug; a workspace that does not exist has no destinations.
        workspace = (await resolve_id(conn, workspace_id) or "") if workspace_id else DEFAULT_WORKSPACE_ID
        where = [_live(), c.workspace_id == workspace]
        total = (await conn.execute(select(func.count()).select_from(destinations).where(*where))).scalar() or 0
        page = await conn.execute(
            select(destinations).where(*where).order_by(c.created_at, c.id).offset(offset).limit(limit)
        )
        rows = [Row.of(r) for r in page]
        pending = await pending_of(conn, [r.id for r in rows])
    return [(r, pending.get(r.id, 0)) for r in rows], int(total)


async def get(db: Database, id_: str) -> tuple[Row, int]:
    try:
        uuid.UUID(id_)
    except ValueError:
        raise not_found("Observability destination not found") from None
    async with db.engine.connect() as conn:
        found = (await conn.execute(select(destinations).where(destinations.c.id == id_, _live()))).first()
        if found is None:
            raise not_found("Observability destination not found")
        return Row.of(found), (await pending_of(conn, [id_])).get(id_, 0)


def _merged(row: Row, keyring: Keyring | None, patch: dict[str, Any]) -> dict[str, Any]:
    """The current config with `patch` over it: a masked value sent back keeps what it masks, and
    null resets a field to its default."""
    if keyring is None:
        raise GatewayError(400, NOT_CONFIGURED)
    try:
        current = row.full_config(keyring)
    except Undecryptable:
        raise GatewayError(
            400, f"This destination's credentials were encrypted under a key no longer in {SETTING}: send them all"
        ) from None
    merged = dict(current)
    for k, v in patch.items():
        shown = row.masked.get(k)
        if v is None:
            merged.pop(k, None)
        elif k == "headers" and isinstance(v, dict) and isinstance(shown, dict):
            old = current.get("headers") or {}
            merged[k] = {h: old[h] if h in old and x == shown.get(h) else x for h, x in v.items()}
        elif not (isinstance(v, str) and v == shown):
            merged[k] = v
    return merged


async def update_destination(db: Database, keyring: Keyring | None, row: Row, body: UpdateDestination) -> Row:
    changes: dict[str, Any] = {
        f: getattr(body, f) for f in body.__struct_fields__ if f != "config" and getattr(body, f) is not UNSET
    }
    if "regions" in changes:
        changes["regions"] = _regions(changes["regions"])
    if "filter_rules" in changes:
        changes["filter_rules"] = _rules(changes["filter_rules"])
    if body.config is not UNSET:
        changes.update(_sealed(keyring, row.type, kinds.validate(row.type, _merged(row, keyring, body.config))))
    if not changes:
        return row
    changes["updated_at"] = datetime.now(UTC)
    async with db.engine.begin() as conn:
        done = await conn.execute(update(destinations).where(destinations.c.id == row.id, _live()).values(**changes))
        if done.rowcount == 0:
            raise not_found("Observability destination not found")
    for f, v in changes.items():
        setattr(row, f, v)
    return row


async def delete(db: Database, row: Row) -> None:
    """Soft delete, as OpenRouter's: the row stays, marked deleted, its secrets wiped, and its
    undelivered events dropped."""
    async with db.engine.begin() as conn:
        await _drop(conn, destinations.c.id == row.id)


async def drop_workspace(conn: AsyncConnection, workspace_id: str) -> None:
    """A deleted workspace's destinations, deleted as one by one would be."""
    await _drop(conn, destinations.c.workspace_id == workspace_id)


async def _drop(conn: AsyncConnection, which: Any) -> None:
    ids = select(destinations.c.id).where(which).scalar_subquery()
    await conn.execute(outbox.delete().where(outbox.c.destination_id.in_(ids)))
    await conn.execute(
        update(destinations)
        .where(which, _live())
        .values(deleted=True, enabled=False, secrets="", masked={}, updated_at=datetime.now(UTC))
    )
