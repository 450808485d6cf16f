"""The stores that grant leases of shared budgets (cluster/budgets.py), raced directly: many holders
asking at once never hold more than the limit leaves, and a holder's lease is what it last wrote."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from omnirouter.accounting.ledger import Counts
from omnirouter.cluster.budgets import DatabaseStore, RedisStore, bucket_name
from omnirouter.cluster.redis import connect
from omnirouter.store import repo
from omnirouter.store.db import Database
from tests.cluster import RedisServer
from tests.gateway import FreshDatabase, postgres_url

BUCKET = ("key:abc", "total", "1970-01-01")
LIMIT = Decimal("1.00")


def _stores(kind: str, db: Database, redis_url: str | None, n: int) -> list[DatabaseStore | RedisStore]:
    if kind == "redis":
        assert redis_url is not None
        redis = connect(redis_url)
        return [RedisStore(redis, db, f"holder-{i}") for i in range(n)]
    return [DatabaseStore(db, f"holder-{i}") for i in range(n)]


def _spend(conn, deltas: Counts) -> None:  # type: ignore[no-untyped-def]
    repo.add_counts(conn, deltas)


@pytest.mark.parametrize("kind", ["database", "redis"] if postgres_url() else ["database"])
def test_holders_racing_for_one_budget_never_hold_more_than_it_leaves(kind: str, tmp_path: Path) -> None:
    fresh = FreshDatabase()
    redis = RedisServer(tmp_path) if kind == "redis" else None

    async def main() -> None:
        db = Database(fresh.url or f"sqlite+aiosqlite:///{tmp_path / 'b.db'}")
        await db.migrate()
        # Spent already: 0.30 of the 1.00, in the counters every store starts from.
        await db.background(_spend, {BUCKET: [Decimal("0.30"), Decimal(0), 3]}, write=True)
        stores = _stores(kind, db, redis.url if redis else None, 12)
        try:
            # Each holder asks three times for 0.05 (at least 0.03), one ask after the other as a worker
            # does, all holders at once: 12 x 3 x 0.05 = 1.80 asked of the 0.70 left.
            async def holder(store: DatabaseStore | RedisStore) -> tuple[Decimal, list]:
                held, answers = Decimal(0), []
                for _ in range(3):
                    grant = await store.acquire(BUCKET, LIMIT, held, Decimal("0.05"), Decimal("0.03"))
                    held += grant.granted
                    answers.append(grant)
                return held, answers

            results = await asyncio.gather(*(holder(s) for s in stores))
            total = sum((held for held, _ in results), Decimal(0))
            grants = [g for _, answers in results for g in answers]
            assert total <= LIMIT - Decimal("0.30"), total
            assert total >= Decimal("0.70") - Decimal("0.03")  # nothing left that a minimum would fit
            assert all(g.spent == Decimal("0.30") for g in grants)
            refused = [g for g in grants if not g.granted]
            assert refused and all(g.spent + g.others >= Decimal("0.67") - Decimal("0.15") for g in refused)
        finally:
            await db.close()
            for s in stores:
                if isinstance(s, RedisStore):
                    await s.redis.aclose()
                    break

    try:
        asyncio.run(main())
    finally:
        if redis is not None:
            redis.stop()
        fresh.drop()


def test_budget_keys_share_one_hash_slot_per_bucket() -> None:
    """Redis Cluster runs a script only on keys of one slot: a bucket's keys share their {tag}."""
    spent, leases = RedisStore.keys(BUCKET)
    tag = "{budget:" + bucket_name(BUCKET) + "}"
    assert spent.startswith("omnirouter:" + tag + ":") and leases.startswith("omnirouter:" + tag + ":")
    assert spent.count("{") == leases.count("{") == 1
