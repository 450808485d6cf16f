"""Every query the server makes. None of them runs on the inference request path."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
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
)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; everything here is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _key_from_row(row: Any) -> KeyRecord:
    m = row._mapping
    return KeyRecord(
        **{f: m[f] for f in KEY_FIELDS if f not in ("created_at", "updated_at", "expires_at")},
        created_at=_aware(m["created_at"]),
        updated_at=_aware(m["updated_at"]),
        expires_at=_aware(m["expires_at"]),
    )


# -- keys
async def load_keys(conn: AsyncConnection) -> list[KeyRecord]:
    rows = await conn.execute(select(api_keys).where(api_keys.c.deleted.is_(False)))
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


async def read_version(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(state_version.c.version).where(state_version.c.id == 1))).scalar() or 0)


# -- counters and credits
async def add_counts(conn: AsyncConnection, deltas: Counts) -> None:
    """Add deltas to the counters atomically: NUMERIC arithmetic in PostgreSQL; in SQLite the
    writer holds the database's write lock (BEGIN IMMEDIATE), so read-add-write is atomic there."""
    c = usage_counters.c
    if conn.dialect.name == "postgresql":
        for (scope, period, start), (usage, byok, reqs) in deltas.items():
            stmt = pg_insert(usage_counters).values(
                scope=scope, period=period, period_start=start, usage=usage, byok_usage=byok, requests=reqs
            )
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[c.scope, c.period, c.period_start],
                    set_={
                        "usage": c.usage + stmt.excluded.usage,
                        "byok_usage": c.byok_usage + stmt.excluded.byok_usage,
                        "requests": c.requests + stmt.excluded.requests,
                    },
                )
            )
        return
    for (scope, period, start), (usage, byok, reqs) in deltas.items():
        where = (c.scope == scope) & (c.period == period) & (c.period_start == start)
        row = (await conn.execute(select(c.usage, c.byok_usage, c.requests).where(where))).first()
        if row is None:
            await conn.execute(
                insert(usage_counters).values(
                    scope=scope,
                    period=period,
                    period_start=start,
                    usage=usage,
                    byok_usage=byok,
                    requests=reqs,
                )
            )
        else:
            await conn.execute(
                update(usage_counters)
                .where(where)
                .values(usage=row[0] + usage, byok_usage=row[1] + byok, requests=row[2] + reqs)
            )


async def read_counts(conn: AsyncConnection, starts: dict[str, str]) -> Counts:
    """The counters of the current windows, for every scope."""
    c = usage_counters.c
    cond = None
    for period, start in starts.items():
        clause = (c.period == period) & (c.period_start == start)
        cond = clause if cond is None else cond | clause
    rows = await conn.execute(select(c.scope, c.period, c.period_start, c.usage, c.byok_usage, c.requests).where(cond))
    return {(r[0], r[1], r[2]): [r[3], r[4], r[5]] for r in rows}


async def total_credits(conn: AsyncConnection) -> Decimal | None:
    rows = (await conn.execute(select(credit_grants.c.amount))).scalars().all()
    return sum(rows, Decimal(0)) if rows else None


async def add_credits(conn: AsyncConnection, amount: Decimal, note: str | None = None) -> None:
    await conn.execute(insert(credit_grants).values(amount=amount, note=note, created_at=datetime.now(UTC)))
    await bump_version(conn)


# -- generations
async def insert_generations(conn: AsyncConnection, rows: list[dict], contents: list[dict]) -> None:
    if rows:
        await conn.execute(insert(generations), rows)
    if contents:
        await conn.execute(insert(generation_content), contents)


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
