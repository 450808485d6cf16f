"""Hourly rollups of generations (tables.generation_rollups) and their daily sums (tables.generation_daily),
written beside each batch of generations in its transaction (store/derived.py): what analytics read
(hourly) and /activity reads (daily) instead of every generation.

A batch's generations are summed in Python by grain (hour, key, workspace, model, provider, API,
app), those sums folded into days (day, key, workspace, model, provider), then both added to the
stored rows of their table: one upsert on PostgreSQL (NUMERIC arithmetic in the database); on
SQLite read, add and write, atomic because the writer's transaction holds the write lock from BEGIN
(BEGIN IMMEDIATE, store/db.py), as repo.add_counts does for the spend counters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import Row, Select, Table, and_, bindparam, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from omnirouter.store.tables import generation_daily, generation_rollups

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

# The daily sums /activity reads (tables.generation_daily): its grain and sums, and where each sum is
# in SUMS.
DAY_GRAIN = ("day", "key_hash", "workspace_id", "model", "provider_slug", "provider_name")
DAY_SUMS = (
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "usage",
    "byok_usage",
)
_DAY_FROM_HOUR = tuple(SUMS.index(name) for name in DAY_SUMS)

Grain = tuple[datetime, str, str, str, str, str, str, str]
DayGrain = tuple[str, str, str, str, str, str]


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


def daily(sums: dict[Grain, list[Any]]) -> dict[DayGrain, list[Any]]:
    """The batch's hourly sums folded into days, without API or app (what /activity groups by), in the
    order of DAY_SUMS."""
    days: dict[DayGrain, list[Any]] = {}
    for (hour, key_hash, workspace, model, slug, name, _, _), s in sums.items():
        day: DayGrain = (hour.strftime("%Y-%m-%d"), key_hash, workspace, model, slug, name)
        d = days.get(day)
        if d is None:
            days[day] = [s[i] for i in _DAY_FROM_HOUR]
        else:
            for j, i in enumerate(_DAY_FROM_HOUR):
                d[j] += s[i]
    return days


def write(conn: Connection, rows: Sequence[dict[str, Any]], contents: dict[str, dict[str, Any]]) -> None:
    """The derived hook (store/derived.py): add the batch to the hourly rollups and the daily sums."""
    sums = summed(rows)
    if not sums:
        return
    hourly = [
        dict(zip(GRAIN, key, strict=True)) | {"day": key[0].strftime("%Y-%m-%d")} | dict(zip(SUMS, s, strict=True))
        for key, s in sums.items()
    ]
    _add(conn, _HOURLY, list(sums), hourly)
    days = daily(sums)
    _add(
        conn,
        _DAILY,
        list(days),
        [dict(zip(DAY_GRAIN, k, strict=True)) | dict(zip(DAY_SUMS, s, strict=True)) for k, s in days.items()],
    )


@dataclass(frozen=True)
class _Target:
    table: Table
    constraint: str
    grain: tuple[str, ...]
    sums: tuple[str, ...]
    key: Callable[[Row[Any]], tuple[Any, ...]]  # a stored row's grain, as the batch spells it


_HOURLY = _Target(generation_rollups, "uq_generation_rollups_grain", GRAIN, SUMS, lambda r: (hour_of(r[0]), *r[1:8]))
_DAILY = _Target(generation_daily, "uq_generation_daily_grain", DAY_GRAIN, DAY_SUMS, lambda r: tuple(r[:6]))


def _add(conn: Connection, to: _Target, keys: list[Any], records: list[dict[str, Any]]) -> None:
    """Add `records` (one per grain in `keys`) to the stored rows of `to.table`."""
    c = to.table.c
    if conn.dialect.name == "postgresql":
        stmt = pg_insert(to.table)
        conn.execute(
            stmt.on_conflict_do_update(
                constraint=to.constraint, set_={name: c[name] + stmt.excluded[name] for name in to.sums}
            ),
            records,
        )
        return
    stored = _stored(conn, to, keys)
    new, changed = [], []
    for record, key in zip(records, keys, strict=True):
        old = stored.get(key)
        if old is None:
            new.append(record)
        else:
            changed.append(
                {f"k_{name}": record[name] for name in to.grain}
                | {name: old[i] + record[name] for i, name in enumerate(to.sums)}
            )
    if new:
        conn.execute(insert(to.table), new)
    if changed:
        where = and_(*(c[name] == bindparam(f"k_{name}") for name in to.grain))
        conn.execute(update(to.table).where(where), changed)


_CHUNK = 100  # grains per lookup (at most 8 bound parameters each, far under SQLite's limit)


@cache
def _lookup(to: _Target, n: int) -> Select[Any]:
    """The stored sums of n grains: an OR of each grain's equalities (SQLite answers each from the
    grain's unique index; a row-value IN would scan the table), with named parameters, so it is built and
    compiled once per size instead of once per batch, which cost more than the lookup itself."""
    c = to.table.c
    match = or_(*(and_(*(c[g] == bindparam(f"{g}_{i}") for g in to.grain)) for i in range(n)))
    return select(*(c[g] for g in to.grain), *(c[s] for s in to.sums)).where(match)


def _stored(conn: Connection, to: _Target, keys: list[Any]) -> dict[Any, tuple[Any, ...]]:
    n = len(to.grain)
    found: dict[Any, tuple[Any, ...]] = {}
    for i in range(0, len(keys), _CHUNK):
        chunk = keys[i : i + _CHUNK]
        size = min(_CHUNK, 1 << (len(chunk) - 1).bit_length())  # a few sizes, so a few statements
        chunk += chunk[-1:] * (size - len(chunk))  # padded with a grain asked twice
        params = {f"{g}_{k}": value for k, key in enumerate(chunk) for g, value in zip(to.grain, key, strict=True)}
        for r in conn.execute(_lookup(to, size), params):
            found[to.key(r)] = tuple(r[n:])
    return found
