"""Key management: /keys (management keys only) and /key (the calling key)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from starlette.requests import Request
from starlette.routing import Route

from omnirouter.accounting.ledger import Ledger
from omnirouter.accounting.meter import key_remaining
from omnirouter.api import auth
from omnirouter.api.errors import ApiError, not_found
from omnirouter.api.jsonio import JSONResponse, money
from omnirouter.governance.keys import KeyRecord, key_hash, mask, new_key
from omnirouter.state import state
from omnirouter.store import repo

DEFAULT_WORKSPACE = "default"
PAGE_SIZE = 100
LimitReset = Literal["daily", "weekly", "monthly"]


class CreateKey(msgspec.Struct, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    limit: Decimal | None = None
    limit_reset: LimitReset | None = None
    include_byok_in_limit: bool = False
    expires_at: datetime | None = None
    # Bounded by their columns (String(64)): PostgreSQL would refuse longer values with a 500.
    workspace_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    creator_user_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None

    def __post_init__(self) -> None:
        _check_limit(self.limit)


class UpdateKey(msgspec.Struct, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | msgspec.UnsetType = msgspec.UNSET
    disabled: bool | msgspec.UnsetType = msgspec.UNSET
    limit: Decimal | msgspec.UnsetType | None = msgspec.UNSET
    limit_reset: LimitReset | msgspec.UnsetType | None = msgspec.UNSET
    include_byok_in_limit: bool | msgspec.UnsetType = msgspec.UNSET

    def __post_init__(self) -> None:
        if isinstance(self.limit, Decimal):
            _check_limit(self.limit)


# The money columns are NUMERIC(38, 18) (store.types.Money): 18 decimal places, under 10**20 USD.
MONEY_PLACES = 18
MONEY_MAX = Decimal(10) ** 20


def _check_limit(limit: Decimal | None) -> None:
    if limit is None:
        return
    if not limit.is_finite() or limit < 0:
        raise ValueError("limit must be a number >= 0, or null for no limit")
    # PostgreSQL would round finer amounts (SQLite would not) and refuse larger ones: refuse both here.
    if limit >= MONEY_MAX:
        raise ValueError("limit must be less than 1e20")
    if limit.normalize().as_tuple().exponent < -MONEY_PLACES:  # type: ignore[operator]
        raise ValueError(f"limit must have at most {MONEY_PLACES} decimal places")


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def usage_fields(ledger: Ledger, key: KeyRecord) -> dict[str, Any]:
    w = ledger.all_windows(key.scope)
    remaining = key_remaining(ledger, key)
    return {
        "limit": money(key.limit),
        "limit_remaining": money(max(remaining, Decimal(0))) if remaining is not None else None,
        "limit_reset": key.limit_reset,
        "include_byok_in_limit": key.include_byok_in_limit,
        "usage": money(w["total"][0]),
        "usage_daily": money(w["day"][0]),
        "usage_weekly": money(w["week"][0]),
        "usage_monthly": money(w["month"][0]),
        "byok_usage": money(w["total"][1]),
        "byok_usage_daily": money(w["day"][1]),
        "byok_usage_weekly": money(w["week"][1]),
        "byok_usage_monthly": money(w["month"][1]),
    }


def key_object(ledger: Ledger, key: KeyRecord) -> dict[str, Any]:
    return {
        "hash": key.hash,
        "name": key.name,
        "label": key.label,
        "disabled": key.disabled,
        **usage_fields(ledger, key),
        "created_at": _iso(key.created_at),
        "updated_at": _iso(key.updated_at),
        "expires_at": _iso(key.expires_at),
        "creator_user_id": key.creator_user_id,
        "workspace_id": key.workspace_id or DEFAULT_WORKSPACE,
    }


async def _json(request: Request, kind: type[msgspec.Struct]) -> Any:
    raw = await request.body()
    try:  # decoded straight from the JSON text, so a limit like 0.1 stays exactly 0.1
        return msgspec.json.decode(raw or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise ApiError(400, f"Invalid request: {exc}") from None
    except msgspec.DecodeError:
        raise ApiError(400, "Invalid JSON in request body") from None


async def _managed_key(request: Request) -> KeyRecord:
    """The inference key named in the path (management keys are not managed through /keys)."""
    st = state(request)
    record = st.keys.by_hash.get(request.path_params["hash"])
    if record is None or record.is_management:
        async with st.db.engine.connect() as conn:
            record = await repo.get_key(conn, request.path_params["hash"])
    if record is None or record.is_management:
        raise not_found("Key not found")
    return record


async def list_keys(request: Request) -> JSONResponse:
    await auth.management_key(request)
    st = state(request)
    q = request.query_params
    try:
        offset = int(q.get("offset", "0"))
    except ValueError:
        raise ApiError(400, "offset must be an integer") from None
    if offset < 0:
        raise ApiError(400, "offset must be >= 0")
    include_disabled = q.get("include_disabled", "false").lower() == "true"
    # Without workspace_id, the default workspace's keys (as OpenRouter documents), not every workspace's.
    workspace = q.get("workspace_id") or DEFAULT_WORKSPACE
    async with st.db.engine.connect() as conn:
        keys = [k for k in await conn.run_sync(repo.load_keys) if not k.is_management]
    keys = [
        k for k in keys if (include_disabled or not k.disabled) and (k.workspace_id or DEFAULT_WORKSPACE) == workspace
    ]
    # Most recent first; the hash breaks created_at ties so that pages never overlap or skip a key.
    keys.sort(key=lambda k: (k.created_at, k.hash), reverse=True)
    page = keys[offset : offset + PAGE_SIZE]
    return JSONResponse({"data": [key_object(st.ledger, k) for k in page]})


async def create_key(request: Request) -> JSONResponse:
    creator = await auth.management_key(request)
    st = state(request)
    body: CreateKey = await _json(request, CreateKey)
    if body.expires_at is not None:
        if body.expires_at.tzinfo is None or body.expires_at.utcoffset() != UTC.utcoffset(None):
            raise ApiError(400, "expires_at must be an ISO 8601 timestamp in UTC (ending in Z or +00:00)")
        if body.expires_at <= datetime.now(UTC):
            raise ApiError(400, "expires_at must be in the future")
    secret = new_key()
    record = KeyRecord(
        hash=key_hash(secret),
        name=body.name,
        label=mask(secret),
        created_at=datetime.now(UTC),
        limit=body.limit,
        limit_reset=body.limit_reset,
        include_byok_in_limit=body.include_byok_in_limit,
        expires_at=body.expires_at,
        workspace_id=body.workspace_id,
        creator_user_id=body.creator_user_id or creator.creator_user_id,
    )
    async with st.db.engine.begin() as conn:
        await repo.insert_key(conn, record)
    st.keys.put(record)
    return JSONResponse({"data": key_object(st.ledger, record), "key": secret}, status_code=201)


async def get_key(request: Request) -> JSONResponse:
    await auth.management_key(request)
    return JSONResponse({"data": key_object(state(request).ledger, await _managed_key(request))})


async def update_key(request: Request) -> JSONResponse:
    await auth.management_key(request)
    st = state(request)
    record = await _managed_key(request)
    body: UpdateKey = await _json(request, UpdateKey)
    changes = {f: getattr(body, f) for f in body.__struct_fields__ if getattr(body, f) is not msgspec.UNSET}
    if changes:
        changes["updated_at"] = datetime.now(UTC)
        async with st.db.engine.begin() as conn:
            await repo.update_key(conn, record.hash, changes)
        for f, v in changes.items():
            setattr(record, f, v)
        st.keys.put(record)
    return JSONResponse({"data": key_object(st.ledger, record)})


async def delete_key(request: Request) -> JSONResponse:
    await auth.management_key(request)
    st = state(request)
    record = await _managed_key(request)
    async with st.db.engine.begin() as conn:
        await repo.update_key(conn, record.hash, {"deleted": True, "updated_at": datetime.now(UTC)})
    st.keys.drop(record.hash)
    return JSONResponse({"deleted": True})


async def current_key(request: Request) -> JSONResponse:
    key = await auth.any_key(request)
    st = state(request)
    return JSONResponse(
        {
            "data": {
                "label": key.label,
                **usage_fields(st.ledger, key),
                "is_free_tier": st.ledger.credits is None,
                "is_management_key": key.is_management,
                "is_provisioning_key": key.is_management,
                "expires_at": _iso(key.expires_at),
                "creator_user_id": key.creator_user_id,
                # Deprecated upstream; a stable placeholder (behaviors §6.4).
                "rate_limit": {
                    "requests": -1,
                    "interval": "10s",
                    "note": "This field is deprecated and safe to ignore.",
                },
            }
        }
    )


routes = [
    Route("/keys", list_keys, methods=["GET"]),
    Route("/keys", create_key, methods=["POST"]),
    Route("/keys/{hash}", get_key, methods=["GET"]),
    Route("/keys/{hash}", update_key, methods=["PATCH"]),
    Route("/keys/{hash}", delete_key, methods=["DELETE"]),
    Route("/key", current_key, methods=["GET"]),
]
