"""Hourly rollups of generations (tables.generation_rollups), written beside each batch of generations in
its transaction (store/derived.py): what /activity and most analytics read instead of every generation.

A batch's generations are summed in Python by grain (hour, key, workspace, model, provider, API,
app), then added to the stored rows: one upsert on PostgreSQL (NUMERIC arithmetic in the database); on
SQLite read, add and write, atomic because the writer's transaction holds the write lock from BEGIN
(BEGIN IMMEDIATE, store/db.py), as repo.add_counts does for the spend counters.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from omnirouter.store.tables import generation_rollups

GRAIN = ("hour", "key_hash", "workspace_id", "model", "provider_slug", "provider_name", "api_type", "app")
SUMS = (
    "requests",
    "errors",
    "cancelled",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "usage",
    "byok_usage",
    "latency_ms",
    "latency_count",
    "generation_time_ms",
    "generation_time_count",
)
_ZERO = Decimal(0)

Grain = tuple[datetime, str, str, str, str, str, str, str]


def hour_of(at: datetime) -> datetime:
    """The UTC hour `at` falls in (a naive time is UTC, as SQLite returns them)."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.replace(minute=0, second=0, microsecond=0)


def grain_of(row: dict[str, Any]) -> Grain:
    return (
        hour_of(row["created_at"]),
        row["key_hash"],
        row.get("workspace_id") or "",
        row["model"],
        row.get("provider_slug") or "",
        row.get("provider_name") or "",
        row.get("api_type") or "completions",
        row.get("app_title") or "",
    )


def summed(rows: Sequence[dict[str, Any]]) -> dict[Grain, list[Any]]:
    """The batch's sums by grain, in the order of SUMS."""
    sums: dict[Grain, list[Any]] = {}
    for row in rows:
        key = grain_of(row)
        s = sums.get(key)
        if s is None:
            s = sums[key] = [0, 0, 0, 0, 0, 0, 0, _ZERO, _ZERO, 0, 0, 0, 0]
        s[0] += 1
        s[1] += 1 if row.get("error") else 0
        s[2] += 1 if row.get("cancelled") else 0
        s[3] += row.get("tokens_prompt") or 0
        s[4] += row.get("tokens_completion") or 0
        s[5] += row.get("native_tokens_reasoning") or 0
        s[6] += row.get("native_tokens_cached") or 0
        s[7] += Decimal(row.get("total_cost") or 0)
        if row.get("is_byok"):
            s[8] += Decimal(row.get("upstream_inference_cost") or 0)
        if (latency := row.get("latency_ms")) is not None:
            s[9] += latency
            s[10] += 1
        if (gen_time := row.get("generation_time_ms")) is not None:
            s[11] += gen_time
            s[12] += 1
    return sums


def write(conn: Connection, rows: Sequence[dict[str, Any]], contents: dict[str, dict[str, Any]]) -> None:
    """The derived hook (store/derived.py): add the batch to the rollups."""
    sums = summed(rows)
    if not sums:
        return
    records = [
        dict(zip(GRAIN, key, strict=True)) | {"day": key[0].strftime("%Y-%m-%d")} | dict(zip(SUMS, s, strict=True))
        for key, s in sums.items()
    ]
    c = generation_rollups.c
    if conn.dialect.name == "postgresql":
        stmt = pg_insert(generation_rollups)
        conn.execute(
            stmt.on_conflict_do_update(
                constraint="uq_generation_rollups_grain",
                set_={name: c[name] + stmt.excluded[name] for name in SUMS},
            ),
            records,
        )
        return
    stored = _stored(conn, list(sums))
    new, changed = [], []
    for record, key in zip(records, sums, strict=True):
        old = stored.get(key)
        if old is None:
            new.append(record)
        else:
            changed.append(
                {f"k_{name}": record[name] for name in GRAIN}
                | {name: old[i] + record[name] for i, name in enumerate(SUMS)}
            )
    if new:
        conn.execute(insert(generation_rollups), new)
    if changed:
        where = and_(*(c[name] == bindparam(f"k_{name}") for name in GRAIN))
        conn.execute(update(generation_rollups).where(where), changed)


_CHUNK = 100  # grains per lookup (8 bound parameters each, far under SQLite's limit)


def _stored(conn: Connection, keys: list[Grain]) -> dict[Grain, tuple[Any, ...]]:
    c = generation_rollups.c
    found: dict[Grain, tuple[Any, ...]] = {}
    for i in range(0, len(keys), _CHUNK):
        chunk = keys[i : i + _CHUNK]
        match = or_(*(and_(*(c[name] == value for name, value in zip(GRAIN, key, strict=True))) for key in chunk))
        for r in conn.execute(select(*(c[n] for n in GRAIN), *(c[n] for n in SUMS)).where(match)):
            found[(hour_of(r[0]), *r[1:8])] = tuple(r[8:])  # type: ignore[assignment]
    return found
