"""Every query the server makes. None of them runs on the inference request path."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, insert, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from omnirouter.accounting.ledger import Counts
from omnirouter.governance.keys import KeyRecord
from omnirouter.store.tables import (
    api_keys,
    credit_grants,
    generation_content,
    generations,
    state_version,
    usage_counters,
)

KEY_FIELDS = (
    "hash",
    "name",
    "label",
    "is_management",
    "disabled",
    "limit",
    "limit_reset",
    "include_byok_in_limit",
    "expires_at",
    "workspace_id",
    "creator_user_id",
    "created_at",
    "updated_at",
    "external_user",
    "last_used_at",
    "rpm_limit",
    "tpm_limit",
    "response_cache_ttl_seconds",
)
DATETIME_FIELDS = ("created_at", "updated_at", "expires_at", "last_used_at")


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; everything here is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _key_from_row(row: Any) -> KeyRecord:
    m = row._mapping
    return KeyRecord(**{f: _aware(m[f]) if f in DATETIME_FIELDS else m[f] for f in KEY_FIELDS})


# -- keys
def load_keys(conn: Connection) -> list[KeyRecord]:
    rows = conn.execute(select(api_keys).where(api_keys.c.deleted.is_(False)))
    return [_key_from_row(r) for r in rows]


async def get_key(conn: AsyncConnection, hash_: str) -> KeyRecord | None:
    row = (await conn.execute(select(api_keys).where(api_keys.c.hash == hash_, api_keys.c.deleted.is_(False)))).first()
    return _key_from_row(row) if row else None


async def insert_key(conn: AsyncConnection, record: KeyRecord) -> None:
    await conn.execute(insert(api_keys).values({**{f: getattr(record, f) for f in KEY_FIELDS}, "deleted": False}))
    await bump_version(conn)


async def update_key(conn: AsyncConnection, hash_: str, changes: dict[str, Any]) -> None:
    await conn.execute(update(api_keys).where(api_keys.c.hash == hash_).values(**changes))
    await bump_version(conn)


def mark_keys_used(conn: Connection, used: dict[str, datetime]) -> None:
    """Record when keys last authenticated an inference request. Not a management change: no version
    bump, so workers do not reload every key for it; a time never moves backwards (other workers)."""
    if not used:
        return
    c = api_keys.c
    conn.execute(
        update(api_keys)
        .where(c.hash == bindparam("k_hash"))
        .where(c.last_used_at.is_(None) | (c.last_used_at < bindparam("k_at")))
        .values(last_used_at=bindparam("k_at")),
        [{"k_hash": h, "k_at": at} for h, at in used.items()],
    )


async def has_management_key(conn: AsyncConnection) -> bool:
    q = (
        select(func.count())
        .select_from(api_keys)
        .where(api_keys.c.is_management.is_(True), api_keys.c.deleted.is_(False))
    )
    return bool((await conn.execute(q)).scalar())


# -- change notification between workers
async def bump_version(conn: AsyncConnection) -> None:
    await conn.execute(update(state_version).where(state_version.c.id == 1).values(version=state_version.c.version + 1))


def read_version(conn: Connection) -> int:
    return int(conn.execute(select(state_version.c.version).where(state_version.c.id == 1)).scalar() or 0)


# -- counters and credits
def add_counts(conn: Connection, deltas: Counts) -> None:
    """Add deltas to the counters atomically, in a few statements whatever their number: NUMERIC
    arithmetic in PostgreSQL; in SQLite (decimal strings, which its own arithmetic would turn into
    floats) the writer holds the write lock (BEGIN IMMEDIATE), so read-add-write is atomic there."""
    if not deltas:
        return
    c = usage_counters.c
    rows = [
        {"scope": scope, "period": period, "period_start": start, "usage": u, "byok_usage": b, "requests": r}
        for (scope, period, start), (u, b, r) in deltas.items()
    ]
    if conn.dialect.name == "postgresql":
        stmt = pg_insert(usage_counters)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[c.scope, c.period, c.period_start],
                set_={
                    "usage": c.usage + stmt.excluded.usage,
                    "byok_usage": c.byok_usage + stmt.excluded.byok_usage,
                    "requests": c.requests + stmt.excluded.requests,
                },
            ),
            rows,
        )
        return
    current = {
        (r[0], r[1], r[2]): r[3:]
        for r in conn.execute(
            select(c.scope, c.period, c.period_start, c.usage, c.byok_usage, c.requests).where(
                tuple_(c.scope, c.period, c.period_start).in_(list(deltas))
            )
        )
    }
    new, changed = [], []
    for row in rows:
        old = current.get((row["scope"], row["period"], row["period_start"]))
        if old is None:
            new.append(row)
        else:
            changed.append(
                {
                    "k_scope": row["scope"],
                    "k_period": row["period"],
                    "k_start": row["period_start"],
                    "usage": old[0] + row["usage"],
                    "byok_usage": old[1] + row["byok_usage"],
                    "requests": old[2] + row["requests"],
                }
            )
    if new:
        conn.execute(insert(usage_counters), new)
    if changed:
        conn.execute(
            update(usage_counters).where(
                (c.scope == bindparam("k_scope"))
                & (c.period == bindparam("k_period"))
                & (c.period_start == bindparam("k_start"))
            ),
            changed,
        )


def read_counts(conn: Connection, starts: dict[str, str]) -> Counts:
    """The counters of the current windows, for every scope."""
    c = usage_counters.c
    cond = None
    for period, start in starts.items():
        clause = (c.period == period) & (c.period_start == start)
        cond = clause if cond is None else cond | clause
    rows = conn.execute(select(c.scope, c.period, c.period_start, c.usage, c.byok_usage, c.requests).where(cond))
    return {(r[0], r[1], r[2]): [r[3], r[4], r[5]] for r in rows}


def total_credits(conn: Connection) -> Decimal | None:
    rows = conn.execute(select(credit_grants.c.amount)).scalars().all()
    return sum(rows, Decimal(0)) if rows else None


async def add_credits(conn: AsyncConnection, amount: Decimal, note: str | None = None) -> None:
    await conn.execute(insert(credit_grants).values(amount=amount, note=note, created_at=datetime.now(UTC)))
    await bump_version(conn)


# -- generations
async def get_generation(conn: AsyncConnection, gen_id: str) -> dict | None:
    row = (await conn.execute(select(generations).where(generations.c.id == gen_id))).first()
    if row is None:
        return None
    out = dict(row._mapping)
    out["created_at"] = _aware(out["created_at"])
    return out


async def get_generation_content(conn: AsyncConnection, gen_id: str) -> dict | None:
    row = (await conn.execute(select(generation_content).where(generation_content.c.id == gen_id))).first()
    return dict(row._mapping) if row else None
