"""GET /activity and /analytics/query from the rollups vs a naive scan of the generations, on PostgreSQL.

Writes N generations (default 1,000,000) over the last 30 days into a fresh database, in batches whose
hourly rollups and daily sums the derived hook writes in the same transaction (as the recorder's flush
does), then times: the activity query (observability/activity.py, from the daily sums), an analytics
query by model and day (from the hourly rollups), and the same sums straight from the generations.
Prints the times and their ratios.

    .venv/bin/python bench/activity.py [--rows N] [--url postgresql+asyncpg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy import func, insert, select

from omnirouter.observability import activity, analytics, rollups
from omnirouter.store.db import Database
from omnirouter.store.tables import generations

BATCH = 5000
MODELS = [f"vendor/model-{i}" for i in range(12)]
PROVIDERS = [(f"provider-{i}", f"Provider {i}") for i in range(3)]
KEYS = [secrets.token_hex(32) for _ in range(5)]


def _batch(start: int, n: int, today: datetime) -> list[dict[str, Any]]:
    rows = []
    for i in range(start, start + n):
        slug, name = random.choice(PROVIDERS)
        at = today - timedelta(seconds=random.randrange(30 * 86400))
        rows.append({c.name: None for c in generations.columns} | {
            "id": f"gen-bench-{i}", "request_id": f"req-{i}", "key_hash": random.choice(KEYS),
            "model": random.choice(MODELS), "provider_slug": slug, "provider_name": name, "api_type": "completions",
            "streamed": False, "cancelled": False, "created_at": at, "latency_ms": random.randrange(50, 900),
            "tokens_prompt": random.randrange(1000), "tokens_completion": random.randrange(500),
            "native_tokens_prompt": 0, "native_tokens_completion": 0, "native_tokens_reasoning": 0,
            "native_tokens_cached": 0, "native_tokens_cache_write": 0,
            "total_cost": Decimal(random.randrange(1, 10**6)) / Decimal(10**9), "is_byok": False,
        })  # fmt: skip
    return rows


async def _timed(fn: Any, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        await fn()
        best = min(best, time.perf_counter() - began)
    return best


async def main(rows: int, base: str) -> None:
    name = "omni_bench_" + secrets.token_hex(4)
    admin = await asyncpg.connect(base.replace("postgresql+asyncpg://", "postgresql://"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    db = Database(base.rsplit("/", 1)[0] + "/" + name)
    try:
        await db.migrate()
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        began = time.perf_counter()
        for start in range(0, rows, BATCH):
            batch = _batch(start, min(BATCH, rows - start), today)

            def write(conn: Any, batch: list[dict[str, Any]] = batch) -> None:
                conn.execute(insert(generations), batch)
                rollups.write(conn, batch, {})

            await db.background(write, write=True)
        print(f"wrote {rows} generations and their rollups in {time.perf_counter() - began:.1f} s")
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")
            n_rollups = (await conn.execute(select(func.count()).select_from(rollups.generation_rollups))).scalar()
            n_daily = (await conn.execute(select(func.count()).select_from(rollups.generation_daily))).scalar()
        print(f"hourly rollup rows: {n_rollups}, daily rows: {n_daily}")

        async def from_rollups() -> None:
            await activity.activity(db, activity.ActivityQuery(), today=today.date())

        g = generations.c

        async def naive() -> None:
            day = func.date_trunc("day", func.timezone("UTC", g.created_at))
            stmt = (
                select(day, g.model, g.provider_slug, func.sum(g.total_cost), func.count(), func.sum(g.tokens_prompt))
                .where(g.created_at >= today - timedelta(days=30), g.created_at < today)
                .group_by(day, g.model, g.provider_slug)
            )
            async with db.engine.connect() as conn:
                (await conn.execute(stmt)).all()

        query = analytics.parse(
            {
                "metrics": ["usage", "request_count", "avg_latency_ms"],
                "dimensions": ["model"],
                "granularity": "day",
                "time_range": {"start": (today - timedelta(days=30)).isoformat(), "end": today.isoformat()},
            }
        )
        ragged = analytics.parse(
            {
                "metrics": ["usage", "request_count", "avg_latency_ms"],
                "dimensions": ["model"],
                "granularity": "day",
                "time_range": {
                    "start": (today - timedelta(days=30, seconds=1)).isoformat(),
                    "end": today.isoformat(),
                },
            }
        )

        async def query_rollups() -> None:
            assert (await analytics.run(db, query)).source == "rollups"

        async def query_generations() -> None:
            assert (await analytics.run(db, ragged)).source == "generations"

        t_activity, t_naive = await _timed(from_rollups), await _timed(naive, 3)
        t_query, t_query_g = await _timed(query_rollups), await _timed(query_generations, 3)
        print(f"/activity from daily sums:       {t_activity * 1000:8.1f} ms")
        print(f"same sums scanning generations:  {t_naive * 1000:8.1f} ms   ratio {t_naive / t_activity:6.1f}x")
        print(f"/analytics/query from rollups:   {t_query * 1000:8.1f} ms")
        print(f"same query from generations:     {t_query_g * 1000:8.1f} ms   ratio {t_query_g / t_query:6.1f}x")
    finally:
        await db.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.url))
