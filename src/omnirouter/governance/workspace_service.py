"""Workspaces, their budgets and members, and the organisation's members: shared by the API
(/workspaces, /organization/members) and the CLI (`omnirouter workspaces`, `omnirouter members`).
What a request may send, what is stored, and the objects clients read back.

Members are created by the operator (`omnirouter members add`): there is no sign-up here. Every
member belongs to the default workspace implicitly (no rows for it); other workspaces list theirs."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType
from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from omnirouter.errors import GatewayError, not_found
from omnirouter.governance.key_service import MONEY_MAX, MONEY_PLACES, NO_NUL, OFFSET_MAX, iso
from omnirouter.governance.workspaces import DEFAULT_WORKSPACE_ID, INTERVALS, usd
from omnirouter.jsonio import money
from omnirouter.store import repo
from omnirouter.store.db import Database
from omnirouter.store.tables import (
    api_keys,
    guardrail_key_assignments,
    guardrail_member_assignments,
    guardrails,
    members,
    workspace_budgets,
    workspace_members,
    workspaces,
)

PAGE_DEFAULT = 50
PAGE_MAX = 100
SLUG_PATTERN = "^[a-z0-9]+(?:-[a-z0-9]+)*$"
ProviderSort = Literal["price", "throughput", "latency", "exacto"]
Interval = Literal["daily", "weekly", "monthly", "lifetime"]
Role = Literal["admin", "member"]
# The namespace of implicit memberships' ids (derived from the workspace's and the member's).
_DERIVED = uuid.UUID("6f1c1b1e-5d1a-4c59-9a8e-2f0f4c3b7a10")

Name = Annotated[str, Meta(min_length=1, max_length=100, pattern=NO_NUL)]
Slug = Annotated[str, Meta(min_length=1, max_length=50, pattern=SLUG_PATTERN)]
Description = Annotated[str, Meta(max_length=500, pattern=NO_NUL)]
ModelId = Annotated[str, Meta(min_length=1, max_length=255, pattern=NO_NUL)]
SamplingRate = Annotated[float, Meta(ge=0.0001, le=1)]
UserId = Annotated[str, Meta(min_length=1, max_length=64, pattern=NO_NUL)]
Email = Annotated[str, Meta(min_length=3, max_length=255, pattern="^[^@\\s\\x00]+@[^@\\s\\x00]+$")]
PersonName = Annotated[str, Meta(min_length=1, max_length=100, pattern=NO_NUL)]
BudgetLimit = Annotated[
    Decimal,
    Meta(
        description=f"USD, greater than 0; at most {MONEY_PLACES} decimal places, less than 1e20",
        extra_json_schema={
            "exclusiveMinimum": 0,
            "exclusiveMaximum": float(MONEY_MAX),
            "multipleOf": 10.0**-MONEY_PLACES,
        },
    ),
]


def default_guardrail_id(workspace_id: str) -> str:
    """The workspace's default guardrail's id: derived from the workspace's (as OpenRouter's is), so it
    exists before the guardrail is first written (governance/guardrails.py derives it)."""
    from omnirouter.governance.guardrails import default_guardrail_id as derived

    return derived(workspace_id)


# -- what a request may send


class CreateWorkspace(msgspec.Struct, kw_only=True):
    name: Name
    slug: Slug
    description: Description | None = None
    default_text_model: ModelId | None = None
    default_image_model: ModelId | None = None
    default_provider_sort: ProviderSort | None = None
    io_logging_api_key_ids: list[int] | None = None
    io_logging_sampling_rate: SamplingRate = 1.0
    is_data_discount_logging_enabled: bool = True
    is_observability_broadcast_enabled: bool = False
    is_observability_io_logging_enabled: bool = False


class UpdateWorkspace(msgspec.Struct, kw_only=True):
    name: Name | UnsetType = UNSET
    slug: Slug | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    default_text_model: ModelId | UnsetType | None = UNSET
    default_image_model: ModelId | UnsetType | None = UNSET
    default_provider_sort: ProviderSort | UnsetType | None = UNSET
    io_logging_api_key_ids: list[int] | UnsetType | None = UNSET
    io_logging_sampling_rate: SamplingRate | UnsetType = UNSET
    is_data_discount_logging_enabled: bool | UnsetType = UNSET
    is_observability_broadcast_enabled: bool | UnsetType = UNSET
    is_observability_io_logging_enabled: bool | UnsetType = UNSET


class UpsertBudget(msgspec.Struct, kw_only=True):
    limit_usd: BudgetLimit
    include_byok_in_budgets: Annotated[bool, Meta(description="Workspace-wide: every interval")] | UnsetType = UNSET

    def __post_init__(self) -> None:
        limit = self.limit_usd
        if not limit.is_finite() or limit <= 0:
            raise ValueError("limit_usd must be a number greater than 0")
        if limit >= MONEY_MAX:
            raise ValueError("limit_usd must be less than 1e20")
        if limit.normalize().as_tuple().exponent < -MONEY_PLACES:  # type: ignore[operator]
            raise ValueError(f"limit_usd must have at most {MONEY_PLACES} decimal places")


class MemberIds(msgspec.Struct, kw_only=True):
    user_ids: Annotated[list[UserId], Meta(min_length=1, max_length=100)]


class CreateMember(msgspec.Struct, kw_only=True):
    """An organisation member (the CLI's `members add`; no API creates members)."""

    email: Email
    first_name: PersonName | None = None
    last_name: PersonName | None = None
    role: Role = "member"


# -- what clients read


class Workspace(msgspec.Struct, kw_only=True):
    id: str
    name: str
    slug: str
    description: str | None
    default_guardrail_id: Annotated[str, Meta(description="Derived from the workspace's id")]
    default_text_model: str | None
    default_image_model: str | None
    default_provider_sort: str | None
    include_byok_in_budgets: bool
    io_logging_api_key_ids: list[int] | None
    io_logging_sampling_rate: float
    is_data_discount_logging_enabled: bool
    is_observability_broadcast_enabled: bool
    is_observability_io_logging_enabled: bool
    created_by: str | None
    created_at: str
    updated_at: str | None


class WorkspaceResponse(msgspec.Struct, kw_only=True):
    data: Workspace


class WorkspaceList(msgspec.Struct, kw_only=True):
    data: list[Workspace]
    total_count: int


class Deleted(msgspec.Struct, kw_only=True):
    deleted: Literal[True] = True


class WorkspaceBudget(msgspec.Struct, kw_only=True):
    id: str
    workspace_id: str
    limit_usd: Decimal
    reset_interval: Annotated[Literal["daily", "weekly", "monthly"] | None, Meta(description="null: lifetime")]
    created_at: str
    updated_at: str


class BudgetResponse(msgspec.Struct, kw_only=True):
    data: WorkspaceBudget
    include_byok_in_budgets: bool


class BudgetList(msgspec.Struct, kw_only=True):
    data: list[WorkspaceBudget]
    include_byok_in_budgets: bool


class WorkspaceMember(msgspec.Struct, kw_only=True):
    id: str
    workspace_id: str
    user_id: str
    role: Role
    created_at: str


class WorkspaceMemberList(msgspec.Struct, kw_only=True):
    data: list[WorkspaceMember]
    total_count: int


class AddedMembers(msgspec.Struct, kw_only=True):
    data: list[WorkspaceMember]
    added_count: int


class RemovedMembers(msgspec.Struct, kw_only=True):
    removed_count: int


class OrganizationMember(msgspec.Struct, kw_only=True):
    id: str
    email: str
    first_name: str | None
    last_name: str | None
    role: Literal["org:admin", "org:member"]


class OrganizationMemberList(msgspec.Struct, kw_only=True):
    data: list[OrganizationMember]
    total_count: int


class PageQuery(msgspec.Struct, kw_only=True):
    offset: Annotated[int, Meta(ge=0, le=OFFSET_MAX, description="Records to skip")] | UnsetType = UNSET
    limit: Annotated[int, Meta(ge=1, le=PAGE_MAX, description=f"At most {PAGE_MAX}; {PAGE_DEFAULT} by default")] | (
        UnsetType
    ) = UNSET


def page(offset: str | None, limit: str | None) -> tuple[int, int]:
    """offset and limit from a query string, or a 400."""
    try:
        start = int(offset) if offset not in (None, "") else 0
        size = int(limit) if limit not in (None, "") else PAGE_DEFAULT
    except ValueError:
        raise GatewayError(400, "offset and limit must be integers") from None
    if not 0 <= start <= OFFSET_MAX:
        raise GatewayError(400, f"offset must be between 0 and {OFFSET_MAX}")
    if not 1 <= size <= PAGE_MAX:
        raise GatewayError(400, f"limit must be between 1 and {PAGE_MAX}")
    return start, size


def _iso(value: datetime | None) -> str | None:
    """SQLite hands datetimes back naive; everything stored is UTC."""
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return iso(value)


def _workspace(row: Any) -> Workspace:
    return Workspace(
        id=row.id,
        name=row.name,
        slug=row.slug,
        description=row.description,
        default_guardrail_id=default_guardrail_id(row.id),
        default_text_model=row.default_text_model,
        default_image_model=row.default_image_model,
        default_provider_sort=row.default_provider_sort,
        include_byok_in_budgets=row.include_byok_in_budgets,
        io_logging_api_key_ids=row.io_logging_api_key_ids,
        io_logging_sampling_rate=row.io_logging_sampling_rate,
        is_data_discount_logging_enabled=row.is_data_discount_logging_enabled,
        is_observability_broadcast_enabled=row.is_observability_broadcast_enabled,
        is_observability_io_logging_enabled=row.is_observability_io_logging_enabled,
        created_by=row.created_by,
        created_at=_iso(row.created_at) or "",
        updated_at=_iso(row.updated_at),
    )


def _budget(row: Any) -> WorkspaceBudget:
    return WorkspaceBudget(
        id=row.id,
        workspace_id=row.workspace_id,
        limit_usd=money(row.limit_usd) or Decimal(0),
        reset_interval=None if row.interval == "lifetime" else row.interval,
        created_at=_iso(row.created_at) or "",
        updated_at=_iso(row.updated_at) or "",
    )


def _membership(row: Any) -> WorkspaceMember:
    return WorkspaceMember(
        id=row.id,
        workspace_id=row.workspace_id,
        user_id=row.user_id,
        role=row.role,
        created_at=_iso(row.created_at) or "",
    )


def _implicit(member: Any) -> WorkspaceMember:
    """A member's membership of the default workspace, which every member has without a row."""
    return WorkspaceMember(
        id=str(uuid.uuid5(_DERIVED, f"member:{DEFAULT_WORKSPACE_ID}:{member.id}")),
        workspace_id=DEFAULT_WORKSPACE_ID,
        user_id=member.id,
        role=member.role,
        created_at=_iso(member.created_at) or "",
    )


def _org_member(row: Any) -> OrganizationMember:
    return OrganizationMember(
        id=row.id, email=row.email, first_name=row.first_name, last_name=row.last_name, role=f"org:{row.role}"
    )


def _plausible(ref: str) -> bool:
    """Whether `ref` could name a stored row (a NUL or an over-long value would upset PostgreSQL)."""
    return 0 < len(ref) <= 64 and "\x00" not in ref


def _changes(body: msgspec.Struct) -> dict[str, Any]:
    return {f: getattr(body, f) for f in body.__struct_fields__ if getattr(body, f) is not UNSET}


# -- workspaces


async def _find(conn: AsyncConnection, ref: str, lock: Literal["update", "share"] | None = None) -> Any:
    """A workspace's row by id or slug, or a 404. `lock` (PostgreSQL; SQLite's write transactions are
    serialized anyway): "update" for a change to the workspace or what hangs on it (budgets, members),
    so that concurrent ones take turns (two budget PUTs each checking the other's absence, two adds of
    one member); "share" for a key joining it, so that a delete counting its keys waits for it."""
    if _plausible(ref):
        w = workspaces.c
        query = select(workspaces).where(or_(w.id == ref, w.slug == ref))
        if lock is not None:
            query = query.with_for_update(read=lock == "share")
        row = (await conn.execute(query)).first()
        if row is not None:
            return row
    raise not_found("Workspace not found")


async def resolve_id(conn: AsyncConnection, ref: str, *, lock: bool = False) -> str | None:
    """The id of the workspace `ref` names (its id or slug), None if none does (key_service's check;
    `lock` when a key is about to join it)."""
    try:
        return str((await _find(conn, ref, lock="share" if lock else None)).id)
    except GatewayError:
        return None


async def get(db: Database, ref: str) -> Workspace:
    async with db.engine.connect() as conn:
        return _workspace(await _find(conn, ref))


async def listed(db: Database, offset: int = 0, limit: int = PAGE_DEFAULT) -> WorkspaceList:
    """The default workspace first, then the others by creation."""
    w = workspaces.c
    async with db.engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(workspaces))).scalar_one()
        rows = await conn.execute(
            select(workspaces).order_by((w.id != DEFAULT_WORKSPACE_ID), w.created_at, w.id).offset(offset).limit(limit)
        )
        return WorkspaceList(data=[_workspace(r) for r in rows], total_count=total)


def _slug_taken(slug: str) -> GatewayError:
    return GatewayError(409, f"A workspace with slug {slug!r} already exists")


async def create(db: Database, body: CreateWorkspace, *, created_by: str | None = None) -> Workspace:
    values = {
        **{f: getattr(body, f) for f in body.__struct_fields__},
        "id": str(uuid.uuid4()),
        "include_byok_in_budgets": False,
        "created_by": created_by,
        "created_at": datetime.now(UTC),
        "updated_at": None,
    }
    try:
        async with db.change() as conn:
            if (await conn.execute(select(workspaces.c.id).where(workspaces.c.slug == body.slug))).first():
                raise _slug_taken(body.slug)
            await conn.execute(insert(workspaces).values(values))
            await repo.bump_version(conn)
            row = await _find(conn, values["id"])
    except IntegrityError:  # the same slug, created at the same moment elsewhere
        raise _slug_taken(body.slug) from None
    return _workspace(row)


async def update_workspace(db: Database, ref: str, body: UpdateWorkspace) -> Workspace:
    changes = _changes(body)
    try:
        async with db.change() as conn:
            row = await _find(conn, ref, lock="update")
            if "slug" in changes and changes["slug"] != row.slug:
                taken = await conn.execute(select(workspaces.c.id).where(workspaces.c.slug == changes["slug"]))
                if taken.first():
                    raise _slug_taken(changes["slug"])
            if changes:
                changes["updated_at"] = datetime.now(UTC)
                await conn.execute(update(workspaces).where(workspaces.c.id == row.id).values(changes))
                await repo.bump_version(conn)
                row = await _find(conn, row.id)
    except IntegrityError:
        raise _slug_taken(str(changes.get("slug"))) from None
    return _workspace(row)


async def delete_workspace(db: Database, ref: str) -> None:
    """Refused for the default workspace (403, as OpenRouter answers callers it has not enabled) and for
    one that still has keys (409: delete or move them first); its budgets, memberships and guardrails go
    with it."""
    async with db.change() as conn:
        row = await _find(conn, ref, lock="update")
        if row.id == DEFAULT_WORKSPACE_ID:
            raise GatewayError(403, "The default workspace cannot be deleted")
        k = api_keys.c
        keys = (
            await conn.execute(
                select(func.count()).select_from(api_keys).where(k.workspace_id == row.id, k.deleted.is_(False))
            )
        ).scalar_one()
        if keys:
            raise GatewayError(
                409,
                f"Workspace {row.slug!r} still has {keys} API key(s); delete them or move them to another workspace",
            )
        await conn.execute(delete(workspace_budgets).where(workspace_budgets.c.workspace_id == row.id))
        await conn.execute(delete(workspace_members).where(workspace_members.c.workspace_id == row.id))
        # Its guardrails go with it, as OpenRouter's do, with their assignments.
        rails = select(guardrails.c.id).where(guardrails.c.workspace_id == row.id).scalar_subquery()
        await conn.execute(delete(guardrail_key_assignments).where(guardrail_key_assignments.c.guardrail_id.in_(rails)))
        await conn.execute(
            delete(guardrail_member_assignments).where(guardrail_member_assignments.c.guardrail_id.in_(rails))
        )
        await conn.execute(delete(guardrails).where(guardrails.c.workspace_id == row.id))
        from omnirouter.governance import byok_service  # (here: it imports this module)
        from omnirouter.observability import destinations

        await byok_service.drop_workspace(conn, row.id)  # and its BYOK keys, their secrets wiped
        await destinations.drop_workspace(conn, row.id)  # and its observability destinations, likewise
        await conn.execute(delete(workspaces).where(workspaces.c.id == row.id))
        await repo.bump_version(conn)


# -- budgets


def _interval(value: str) -> str:
    if value not in INTERVALS:
        raise GatewayError(400, f"interval must be one of daily, weekly, monthly, lifetime (got {value[:20]!r})")
    return value


async def budgets(db: Database, ref: str) -> BudgetList:
    async with db.engine.connect() as conn:
        row = await _find(conn, ref)
        found = await conn.execute(select(workspace_budgets).where(workspace_budgets.c.workspace_id == row.id))
        ordered = sorted(found, key=lambda b: INTERVALS.index(b.interval))
    return BudgetList(data=[_budget(b) for b in ordered], include_byok_in_budgets=row.include_byok_in_budgets)


async def budget(db: Database, ref: str, interval: str) -> BudgetResponse:
    _interval(interval)
    async with db.engine.connect() as conn:
        row = await _find(conn, ref)
        b = workspace_budgets.c
        found = (
            await conn.execute(select(workspace_budgets).where(b.workspace_id == row.id, b.interval == interval))
        ).first()
    if found is None:
        raise not_found(f"No {interval} budget is set for this workspace")
    return BudgetResponse(data=_budget(found), include_byok_in_budgets=row.include_byok_in_budgets)


def _check_order(interval: str, limit: Decimal, others: dict[str, Decimal]) -> None:
    """Limits strictly decrease as the interval narrows: lifetime > monthly > weekly > daily."""
    rank = INTERVALS.index(interval)
    for other, other_limit in others.items():
        if other == interval:
            continue
        broader = INTERVALS.index(other) < rank
        if broader and not limit < other_limit:
            raise GatewayError(
                400,
                f"The {interval} budget ({usd(limit)}) must be less than the {other} budget ({usd(other_limit)}): "
                "limits must strictly decrease as the interval narrows (lifetime > monthly > weekly > daily)",
            )
        if not broader and not limit > other_limit:
            raise GatewayError(
                400,
                f"The {interval} budget ({usd(limit)}) must be greater than the {other} budget ({usd(other_limit)}): "
                "limits must strictly decrease as the interval narrows (lifetime > monthly > weekly > daily)",
            )


async def set_budget(db: Database, ref: str, interval: str, body: UpsertBudget) -> BudgetResponse:
    _interval(interval)
    now = datetime.now(UTC)
    b = workspace_budgets.c
    async with db.change() as conn:
        row = await _find(conn, ref, lock="update")
        current = {r.interval: r for r in await conn.execute(select(workspace_budgets).where(b.workspace_id == row.id))}
        _check_order(interval, body.limit_usd, {i: r.limit_usd for i, r in current.items()})
        if interval in current:
            await conn.execute(
                update(workspace_budgets)
                .where(b.id == current[interval].id)
                .values(limit_usd=body.limit_usd, updated_at=now)
            )
            budget_id = current[interval].id
        else:
            budget_id = str(uuid.uuid4())
            await conn.execute(
                insert(workspace_budgets).values(
                    id=budget_id,
                    workspace_id=row.id,
                    interval=interval,
                    limit_usd=body.limit_usd,
                    created_at=now,
                    updated_at=now,
                )
            )
        include = row.include_byok_in_budgets
        if body.include_byok_in_budgets is not UNSET and body.include_byok_in_budgets != include:
            include = body.include_byok_in_budgets
            await conn.execute(
                update(workspaces)
                .where(workspaces.c.id == row.id)
                .values(include_byok_in_budgets=include, updated_at=now)
            )
        await repo.bump_version(conn)
        saved = (await conn.execute(select(workspace_budgets).where(b.id == budget_id))).one()
    return BudgetResponse(data=_budget(saved), include_byok_in_budgets=include)


async def delete_budget(db: Database, ref: str, interval: str) -> None:
    """Deleting a budget that is not set succeeds too (the document: "deleted (or did not exist)")."""
    _interval(interval)
    b = workspace_budgets.c
    async with db.change() as conn:
        row = await _find(conn, ref, lock="update")
        gone = await conn.execute(delete(workspace_budgets).where(b.workspace_id == row.id, b.interval == interval))
        if gone.rowcount:
            await repo.bump_version(conn)


# -- workspace members


async def workspace_members_of(
    db: Database, ref: str, offset: int = 0, limit: int = PAGE_DEFAULT
) -> WorkspaceMemberList:
    """The default workspace's are every organisation member (implicit membership)."""
    async with db.engine.connect() as conn:
        row = await _find(conn, ref)
        if row.id == DEFAULT_WORKSPACE_ID:
            total = (await conn.execute(select(func.count()).select_from(members))).scalar_one()
            found = await conn.execute(
                select(members).order_by(members.c.created_at, members.c.id).offset(offset).limit(limit)
            )
            return WorkspaceMemberList(data=[_implicit(m) for m in found], total_count=total)
        wm = workspace_members.c
        total = (
            await conn.execute(select(func.count()).select_from(workspace_members).where(wm.workspace_id == row.id))
        ).scalar_one()
        found = await conn.execute(
            select(workspace_members)
            .where(wm.workspace_id == row.id)
            .order_by(wm.created_at, wm.user_id)
            .offset(offset)
            .limit(limit)
        )
        return WorkspaceMemberList(data=[_membership(m) for m in found], total_count=total)


async def _known_members(conn: AsyncConnection, user_ids: list[str]) -> dict[str, Any]:
    """The organisation members named, or a 404 naming those that are not (nothing is written then).
    Locked for share: a member being removed from the organisation meanwhile is not added."""
    wanted = list(dict.fromkeys(user_ids))
    plausible = [u for u in wanted if _plausible(u)]
    found = (
        {
            r.id: r
            for r in await conn.execute(select(members).where(members.c.id.in_(plausible)).with_for_update(read=True))
        }
        if plausible
        else {}
    )
    missing = [u for u in wanted if u not in found]
    if missing:
        shown = ", ".join(repr(u[:64]) for u in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise not_found(f"Not members of the organization: {shown}")
    return {u: found[u] for u in wanted}


async def add_members(db: Database, ref: str, body: MemberIds) -> AddedMembers:
    """Each with the role they hold in the organisation; adding a member again updates nothing but
    their role (counted, as "created or updated")."""
    now = datetime.now(UTC)
    wm = workspace_members.c
    async with db.change() as conn:
        row = await _find(conn, ref, lock="update")
        known = await _known_members(conn, body.user_ids)
        if row.id == DEFAULT_WORKSPACE_ID:  # everyone is in it already
            return AddedMembers(data=[_implicit(m) for m in known.values()], added_count=0)
        current = {
            r.user_id: r
            for r in await conn.execute(
                select(workspace_members).where(wm.workspace_id == row.id, wm.user_id.in_(list(known)))
            )
        }
        count = 0
        for user_id, member in known.items():
            held = current.get(user_id)
            if held is None:
                await conn.execute(
                    insert(workspace_members).values(
                        id=str(uuid.uuid4()), workspace_id=row.id, user_id=user_id, role=member.role, created_at=now
                    )
                )
                count += 1
            elif held.role != member.role:
                await conn.execute(update(workspace_members).where(wm.id == held.id).values(role=member.role))
                count += 1
        if count:
            await repo.bump_version(conn)
        saved = await conn.execute(
            select(workspace_members).where(wm.workspace_id == row.id, wm.user_id.in_(list(known)))
        )
        by_user = {r.user_id: r for r in saved}
    return AddedMembers(data=[_membership(by_user[u]) for u in known], added_count=count)


async def remove_members(db: Database, ref: str, body: MemberIds) -> RemovedMembers:
    """Refused (400) for the default workspace, whose members are the organisation's, and for a member
    with active keys in the workspace (OpenRouter's rule); members not in it are not counted."""
    wm, k = workspace_members.c, api_keys.c
    async with db.change() as conn:
        row = await _find(conn, ref, lock="update")
        known = await _known_members(conn, body.user_ids)
        if row.id == DEFAULT_WORKSPACE_ID:
            raise GatewayError(
                400,
                "Every organization member belongs to the default workspace; remove them from the organization instead",
            )
        holding = await conn.execute(
            select(k.creator_user_id)
            .where(k.workspace_id == row.id, k.deleted.is_(False), k.creator_user_id.in_(list(known)))
            .distinct()
        )
        if users := sorted(r[0] for r in holding):
            raise GatewayError(
                400, f"Members with active API keys in this workspace cannot be removed: {', '.join(users[:5])}"
            )
        gone = await conn.execute(
            delete(workspace_members).where(wm.workspace_id == row.id, wm.user_id.in_(list(known)))
        )
        if gone.rowcount:
            await repo.bump_version(conn)
    return RemovedMembers(removed_count=gone.rowcount or 0)


# -- organisation members


def new_user_id() -> str:
    return "user_" + secrets.token_hex(14)


async def org_members(db: Database, offset: int = 0, limit: int = PAGE_DEFAULT) -> OrganizationMemberList:
    async with db.engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(members))).scalar_one()
        found = await conn.execute(
            select(members).order_by(members.c.created_at, members.c.id).offset(offset).limit(limit)
        )
        return OrganizationMemberList(data=[_org_member(m) for m in found], total_count=total)


async def add_org_member(db: Database, body: CreateMember) -> OrganizationMember:
    email = body.email.strip().lower()
    values = {
        "id": new_user_id(),
        "email": email,
        "first_name": body.first_name,
        "last_name": body.last_name,
        "role": body.role,
        "created_at": datetime.now(UTC),
    }
    try:
        async with db.change() as conn:
            if (await conn.execute(select(members.c.id).where(members.c.email == email))).first():
                raise GatewayError(409, f"A member with email {email!r} already exists")
            await conn.execute(insert(members).values(values))
            await repo.bump_version(conn)
    except IntegrityError:
        raise GatewayError(409, f"A member with email {email!r} already exists") from None
    return _org_member(_Row(values))


class _Row:
    """A dict read as a row (attribute access), for an object built from what was just written."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


async def _member_by(conn: AsyncConnection, ref: str) -> Any:
    """An organisation member by id or email, or a 404."""
    if _plausible(ref) or (0 < len(ref) <= 255 and "\x00" not in ref):
        m = members.c
        query = select(members).where(or_(m.id == ref, m.email == ref.strip().lower())).with_for_update()
        row = (await conn.execute(query)).first()
        if row is not None:
            return row
    raise not_found("Member not found")


async def remove_org_member(db: Database, ref: str) -> OrganizationMember:
    """Out of the organisation, every workspace and every guardrail assignment. Their keys stay (keys
    belong to workspaces)."""
    async with db.change() as conn:
        row = await _member_by(conn, ref)
        await conn.execute(delete(workspace_members).where(workspace_members.c.user_id == row.id))
        await conn.execute(delete(guardrail_member_assignments).where(guardrail_member_assignments.c.user_id == row.id))
        await conn.execute(delete(members).where(members.c.id == row.id))
        await repo.bump_version(conn)
    return _org_member(row)
