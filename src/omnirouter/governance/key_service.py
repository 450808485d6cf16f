"""Key management shared by the API (/keys, /key) and the CLI (`omnirouter keys`): what a request may
ask for, the records it stores, and the objects clients read back."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from omnirouter.accounting.ledger import Ledger
from omnirouter.accounting.meter import key_remaining
from omnirouter.accounting.periods import WINDOW_OF_RESET, window_end, window_starts
from omnirouter.errors import GatewayError, not_found
from omnirouter.governance.keys import KeyRecord, KeyStore, key_hash, mask, new_key
from omnirouter.governance.workspaces import DEFAULT_WORKSPACE_ID
from omnirouter.jsonio import money
from omnirouter.store import repo
from omnirouter.store.db import Database

# Keys without a workspace named are created in the default one (governance/workspaces.py).
DEFAULT_WORKSPACE = DEFAULT_WORKSPACE_ID
PAGE_SIZE = 100
LimitReset = Literal["daily", "weekly", "monthly"]

# PostgreSQL's text types cannot hold NUL (a 500 there, if it got that far); the pattern also tells
# schema-driven clients, through the OpenAPI document, not to send one.
NO_NUL = "^[^\\x00]*$"
OFFSET_MAX = 2**31 - 1  # what a page may skip: within every database's OFFSET (PostgreSQL's is int64)
Name = Annotated[str, Meta(min_length=1, max_length=255, pattern=NO_NUL)]
# Bounded by their columns (String(64)): PostgreSQL would refuse longer values.
ColumnId = Annotated[str, Meta(min_length=1, max_length=64, pattern=NO_NUL)]
HASH = re.compile("[0-9a-f]{64}")  # every key's hash: a SHA-256 hex digest
# Omnirouter's per-key rate limits (accounting/ratelimit.py): positive, within the INTEGER column.
# Decoded as a number, since JSON's 60.0 is the whole number 60 too; a fraction is refused (_whole),
# which the document says with multipleOf.
PerMinute = Annotated[float, Meta(ge=1, le=2**31 - 1, extra_json_schema={"multipleOf": 1})]
CacheTTL = Annotated[float, Meta(ge=1, le=2**31 - 1, extra_json_schema={"multipleOf": 1})]  # whole: _whole
CACHE_TTL_DOC = (
    "Omnirouter: every request of this key uses the response cache, its answers kept this many seconds "
    "(clamped to the instance's maximum); null: only requests or presets that ask for it"
)


def _whole(struct: msgspec.Struct, *names: str) -> None:
    """Whole-number fields as ints (JSON may write 60 as 60.0), or a 400 for a fraction."""
    for name in names:
        value = getattr(struct, name)
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"{name} must be a whole number, got {value}")
            setattr(struct, name, int(value))


# The money columns are NUMERIC(38, 18) (store.types.Money): 18 decimal places, under 10**20 USD.
MONEY_PLACES = 18
MONEY_MAX = Decimal(10) ** 20
# What _check_limit enforces, as the OpenAPI document states it (Meta's bounds do not apply to Decimal).
Limit = Annotated[
    Decimal,
    Meta(
        description=f"USD; at most {MONEY_PLACES} decimal places, less than 1e20",
        extra_json_schema={"minimum": 0, "exclusiveMaximum": float(MONEY_MAX), "multipleOf": 10.0**-MONEY_PLACES},
    ),
]
# create_key refuses an offset other than UTC's; the pattern says so to schema-driven clients.
UtcTimestamp = Annotated[datetime, Meta(extra_json_schema={"format": "date-time", "pattern": "(Z|[+-]00:00)$"})]

# Free-model requests per UTC day, by OpenRouter's documented tiers (behaviors §6.6): 50 while the
# account has bought less than 10 credits, 1000 from then on. Here the account is the instance and
# what it bought is its funded credit. Reported, not enforced (see docs/api.md).
FREE_MODEL_DAILY_REQUESTS = 50
FREE_MODEL_DAILY_REQUESTS_FUNDED = 1000
FREE_MODEL_CREDITS_THRESHOLD = Decimal(10)


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


class External(msgspec.Struct, kw_only=True):
    """A partner's identity for the key: `user` is stored and shown as the key's `external_user`."""

    user: Name
    # Declared so that a request with it is refused, not silently ignored; `not: {}` tells schema-driven
    # clients never to send it.
    api_key: Annotated[str, Meta(description="Not supported", extra_json_schema={"not": {}})] | UnsetType = UNSET

    def __post_init__(self) -> None:
        if self.api_key is not UNSET:
            raise ValueError("external.api_key (a key of your own choosing) is not supported; omit it")


class CreateKey(msgspec.Struct, kw_only=True):
    name: Name
    limit: Limit | None = None
    limit_reset: LimitReset | None = None
    include_byok_in_limit: bool = False
    expires_at: UtcTimestamp | None = None
    workspace_id: ColumnId | None = None
    creator_user_id: ColumnId | None = None
    external: External | None = None
    rpm_limit: Annotated[PerMinute | None, Meta(description="Requests per minute; null for none")] = None
    tpm_limit: Annotated[PerMinute | None, Meta(description="Prompt + completion tokens per minute")] = None
    response_cache_ttl_seconds: Annotated[CacheTTL | None, Meta(description=CACHE_TTL_DOC)] = None

    def __post_init__(self) -> None:
        _check_limit(self.limit)
        _whole(self, "rpm_limit", "tpm_limit", "response_cache_ttl_seconds")


class UpdateKey(msgspec.Struct, kw_only=True):
    name: Name | UnsetType = UNSET
    disabled: bool | UnsetType = UNSET
    limit: Limit | UnsetType | None = UNSET
    limit_reset: LimitReset | UnsetType | None = UNSET
    include_byok_in_limit: bool | UnsetType = UNSET
    workspace_id: Annotated[ColumnId, Meta(description="Move the key to this workspace")] | UnsetType = UNSET
    rpm_limit: PerMinute | UnsetType | None = UNSET  # null clears
    tpm_limit: PerMinute | UnsetType | None = UNSET
    response_cache_ttl_seconds: Annotated[CacheTTL, Meta(description=CACHE_TTL_DOC)] | UnsetType | None = UNSET

    def __post_init__(self) -> None:
        if isinstance(self.limit, Decimal):
            _check_limit(self.limit)
        _whole(self, "rpm_limit", "tpm_limit", "response_cache_ttl_seconds")


def parse(raw: bytes, kind: type[msgspec.Struct]) -> Any:
    """A request body, decoded straight from the JSON text (so a limit like 0.1 stays exactly 0.1)."""
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise GatewayError(400, f"Invalid request: {exc}") from None
    except msgspec.DecodeError:
        raise GatewayError(400, "Invalid JSON in request body") from None


# -- what clients read


def iso(value: datetime | None) -> str | None:
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
        "rpm_limit": key.rpm_limit,
        "tpm_limit": key.tpm_limit,
        "response_cache_ttl_seconds": key.response_cache_ttl_seconds,
    }


def key_object(ledger: Ledger, key: KeyRecord, keys: KeyStore | None = None) -> dict[str, Any]:
    """A key as /keys shows it. `keys`: this worker's store, whose uses may not be written yet."""
    return {
        "hash": key.hash,
        "name": key.name,
        "label": key.label,
        "disabled": key.disabled,
        **usage_fields(ledger, key),
        "created_at": iso(key.created_at),
        "updated_at": iso(key.updated_at),
        "expires_at": iso(key.expires_at),
        "last_used_at": iso(keys.last_used_at(key) if keys is not None else key.last_used_at),
        "creator_user_id": key.creator_user_id,
        "external_user": key.external_user,
        "workspace_id": key.workspace_id or DEFAULT_WORKSPACE,
    }


def budgets(ledger: Ledger, key: KeyRecord, now: datetime) -> list[dict[str, Any]]:
    """The key's own limit as a budget layer (current_key_object adds its workspace's budgets)."""
    if key.limit is None:
        return []
    period = WINDOW_OF_RESET[key.limit_reset]
    usage, byok = ledger.spent(key.scope, period, now)
    spend = usage + byok if key.include_byok_in_limit else usage
    return [
        {
            "scope": "key_limit",
            "budget_id": None,
            "guardrail_id": None,
            "include_byok": key.include_byok_in_limit,
            "limit_usd": money(key.limit),
            "spend_usd": money(spend),
            "remaining_usd": money(key.limit - spend),
            "reset_interval": key.limit_reset,
            "resets_at": iso(window_end(period, now)),
        }
    ]


def free_model_daily_requests(ledger: Ledger, key: KeyRecord, now: datetime) -> dict[str, int]:
    funded = ledger.credits is not None and ledger.credits >= FREE_MODEL_CREDITS_THRESHOLD
    limit = FREE_MODEL_DAILY_REQUESTS_FUNDED if funded else FREE_MODEL_DAILY_REQUESTS
    used = ledger.requests(key.free_scope, "day", now)
    return {"limit": limit, "remaining": max(0, limit - used), "used": used}


def current_key_object(ledger: Ledger, key: KeyRecord, governance: Any = None) -> dict[str, Any]:
    """The calling key, as GET /key (and its legacy alias GET /auth/key) shows it. `governance`: the
    worker's snapshots (governance/registry.py), for the budgets governance puts on the key."""
    now = datetime.now(UTC)
    layers = budgets(ledger, key, now)
    if governance is not None and (workspaces := governance.get("workspaces")) is not None:
        from omnirouter.governance.workspaces import budget_layers

        layers = budget_layers(workspaces, ledger, key, now) + layers  # in the order enforcement checks them
    return {
        "label": key.label,
        **usage_fields(ledger, key),
        "is_free_tier": ledger.credits is None,
        "is_management_key": key.is_management,
        "is_provisioning_key": key.is_management,
        "expires_at": iso(key.expires_at),
        "creator_user_id": key.creator_user_id,
        "organization_id": None,  # no organizations here: every key belongs to the instance
        "workspace_id": key.workspace_id or DEFAULT_WORKSPACE,
        # No regional routing policy exists on this server: requests may go to any provider configured.
        "allowed_data_regions": ["global"],
        "budgets": layers,
        # The one that blocks first: a spent one, else the least remaining (only one layer here).
        "effective_budget": min(layers, key=lambda b: b["remaining_usd"]) if layers else None,
        "free_model_daily_requests": free_model_daily_requests(ledger, key, now),
        # Deprecated upstream; a stable placeholder (behaviors §6.4).
        "rate_limit": {"requests": -1, "interval": "10s", "note": "This field is deprecated and safe to ignore."},
    }


# -- operations (the store: this worker's keys, which the API keeps current; None from the CLI)


async def create(
    db: Database, body: CreateKey, *, creator_user_id: str | None = None, keys: KeyStore | None = None
) -> tuple[KeyRecord, str]:
    """A new inference key and its secret (shown once)."""
    now = datetime.now(UTC)
    if body.expires_at is not None:
        if body.expires_at.tzinfo is None or body.expires_at.utcoffset() != UTC.utcoffset(None):
            raise GatewayError(400, "expires_at must be an ISO 8601 timestamp in UTC (ending in Z or +00:00)")
        if body.expires_at <= now:
            raise GatewayError(400, "expires_at must be in the future")
    secret = new_key()
    record = KeyRecord(
        hash=key_hash(secret),
        name=body.name,
        label=mask(secret),
        created_at=now,
        limit=body.limit,
        limit_reset=body.limit_reset,
        include_byok_in_limit=body.include_byok_in_limit,
        expires_at=body.expires_at,
        workspace_id=DEFAULT_WORKSPACE,
        creator_user_id=body.creator_user_id or creator_user_id,
        external_user=body.external.user if body.external else None,
        rpm_limit=body.rpm_limit,
        tpm_limit=body.tpm_limit,
        response_cache_ttl_seconds=body.response_cache_ttl_seconds,
    )
    async with db.change() as conn:
        if body.workspace_id is not None:
            record.workspace_id = await _workspace(conn, body.workspace_id)
        await repo.insert_key(conn, record)
    if keys is not None:
        keys.put(record)
    return record, secret


async def _workspace(conn: Any, ref: str) -> str:
    """The id of the workspace `ref` names (its id or slug), or a 400: nothing is written for a key
    naming a workspace that does not exist."""
    from omnirouter.governance.workspace_service import resolve_id

    if (found := await resolve_id(conn, ref, lock=True)) is None:
        raise GatewayError(400, f"workspace_id: no workspace {ref!r} (create it with POST /workspaces)")
    return found


async def listed(
    db: Database,
    *,
    workspace_id: str | None = None,
    include_disabled: bool = False,
    include_expired: bool = False,
    offset: int = 0,
) -> list[KeyRecord]:
    """One page of a workspace's inference keys (the default workspace's when none is named)."""
    if not 0 <= offset <= OFFSET_MAX:
        raise GatewayError(400, f"offset must be between 0 and {OFFSET_MAX}")
    now = datetime.now(UTC)
    async with db.engine.connect() as conn:
        if workspace_id:  # by id or slug; a workspace that does not exist has no keys
            from omnirouter.governance.workspace_service import resolve_id

            workspace = await resolve_id(conn, workspace_id) or ""
        else:
            workspace = DEFAULT_WORKSPACE
        every = await conn.run_sync(repo.load_keys)
    chosen = [
        k
        for k in every
        if not k.is_management
        and (k.workspace_id or DEFAULT_WORKSPACE) == workspace
        and (include_disabled or not k.disabled)
        and (include_expired or not k.expired(now))
    ]
    # Most recent first; the hash breaks created_at ties so that pages never overlap or skip a key.
    chosen.sort(key=lambda k: (k.created_at, k.hash), reverse=True)
    return chosen[offset : offset + PAGE_SIZE]


async def get(db: Database, hash_: str) -> KeyRecord:
    """An inference key by hash, as stored (management keys are not managed through /keys)."""
    if not HASH.fullmatch(hash_):  # nothing else is a key's hash; and a NUL would upset PostgreSQL
        raise not_found("Key not found")
    async with db.engine.connect() as conn:
        record = await repo.get_key(conn, hash_)
    if record is None or record.is_management:
        raise not_found("Key not found")
    return record


async def update(db: Database, record: KeyRecord, body: UpdateKey, *, keys: KeyStore | None = None) -> KeyRecord:
    changes = {f: getattr(body, f) for f in body.__struct_fields__ if getattr(body, f) is not UNSET}
    if changes:
        async with db.change() as conn:
            if "workspace_id" in changes:
                changes["workspace_id"] = await _workspace(conn, changes["workspace_id"])
                if changes["workspace_id"] == (record.workspace_id or DEFAULT_WORKSPACE):
                    del changes["workspace_id"]  # its own workspace: nothing to move
            if changes:
                changes["updated_at"] = datetime.now(UTC)
                await repo.update_key(conn, record.hash, changes)
        for f, v in changes.items():
            setattr(record, f, v)
        if keys is not None:
            keys.put(record)
    return record


async def ledger_of(db: Database) -> Ledger:
    """The books as the database holds them (for the CLI, which has no running server's ledger)."""

    def read(conn: Any) -> tuple[Any, Decimal | None]:
        return repo.read_counts(conn, window_starts(datetime.now(UTC))), repo.total_credits(conn)

    ledger = Ledger()
    ledger.base, ledger.credits = await db.background(read)
    return ledger


async def delete(db: Database, record: KeyRecord, *, keys: KeyStore | None = None) -> None:
    async with db.change() as conn:
        await repo.update_key(conn, record.hash, {"deleted": True, "updated_at": datetime.now(UTC)})
    if keys is not None:
        keys.drop(record.hash)
