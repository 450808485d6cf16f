"""A worker killed with SIGKILL loses no generation or spend its clients were told about: each is in
its journal before the response's last byte, and the next start replays it (store/journal.py)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from omnirouter.accounting.ledger import INSTANCE, Spend
from omnirouter.accounting.periods import window_starts
from omnirouter.governance.keys import new_key
from omnirouter.store.db import Database
from omnirouter.store.journal import Journal, read_records, replay
from omnirouter.store.tables import generations, usage_counters
from tests.conftest import standard_config
from tests.gateway import FreshDatabase

BURST = 48
CONCURRENCY = 8


async def _burst(api: str, key: str) -> dict[str, Decimal]:
    """BURST requests, every other one streamed: generation id -> the cost its client was told."""
    told: dict[str, Decimal] = {}
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(client: httpx.AsyncClient, i: int) -> None:
        body = {"model": "test/alpha", "messages": [{"role": "user", "content": f"message number {i}"}]}
        async with gate:
            if i % 2:
                async with client.stream("POST", "/chat/completions", json={**body, "stream": True}) as r:
                    assert r.status_code == 200
                    cost = None
                    async for line in r.aiter_lines():
                        if line.startswith("data: {"):
                            chunk = json.loads(line[6:], parse_float=Decimal)
                            if chunk.get("usage"):
                                cost = chunk["usage"]["cost"]
                    assert cost is not None
                    told[r.headers["x-generation-id"]] = cost
            else:
                r = await client.post("/chat/completions", json=body)
                assert r.status_code == 200, r.text
                told[r.headers["x-generation-id"]] = r.json(parse_float=Decimal)["usage"]["cost"]

    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=30) as client:
        await asyncio.gather(*(one(client, i) for i in range(BURST)))
    return told


@pytest.mark.parametrize("flush_interval", ["3600", "0.02"], ids=["nothing-flushed", "flushing"])
def test_kill_9_loses_no_generation_a_client_was_told_about(serve, tmp_path, fake_a, fake_b, flush_interval):
    """With no flush before the kill, every generation must come from the journal; with flushes
    under way, the replay must also skip what a batch had committed, and count nothing twice."""
    config = tmp_path / "omnirouter.yaml"
    config.write_text(yaml.safe_dump(standard_config(fake_a.base_url, fake_b.base_url)))
    mgmt = new_key()
    env = {"OMNIROUTER_MANAGEMENT_KEY": mgmt}
    s = serve("--config", str(config), OMNIROUTER_FLUSH_INTERVAL=flush_interval, **env)
    admin = {"Authorization": f"Bearer {mgmt}"}
    key = httpx.post(s.api + "/keys", json={"name": "burst"}, headers=admin).json()["key"]

    told = asyncio.run(_burst(s.api, key))
    s.proc.kill()  # the moment the last response has arrived
    s.proc.wait(timeout=10)
    assert len(told) == BURST

    same = {"OMNIROUTER_DATA_DIR": s.env["OMNIROUTER_DATA_DIR"]}
    if s.database.url:
        same["OMNIROUTER_DATABASE_URL"] = s.database.url
    again = serve("--config", str(config), **env, **same)
    try:
        with httpx.Client(base_url=again.api, headers={"Authorization": f"Bearer {key}"}, timeout=10) as c:
            for gen_id, cost in told.items():
                r = c.get("/generation", params={"id": gen_id})
                assert r.status_code == 200, (gen_id, r.text)
                assert r.json(parse_float=Decimal)["data"]["total_cost"] == cost
            usage = c.get("/key").json(parse_float=Decimal)["data"]["usage"]
        credits = httpx.get(again.api + "/credits", headers=admin).json(parse_float=Decimal)["data"]
    finally:
        again.stop(drop=False)
    assert usage == sum(told.values())
    assert credits["total_usage"] == sum(told.values())
    # Replayed journals are deleted; the second server's own went at its graceful stop.
    assert not list(Path(s.env["OMNIROUTER_DATA_DIR"]).glob("journal-*"))


# -- the journal and its replay on their own


def _row(gen_id: str, key_hash: str, cost: str) -> dict[str, Any]:
    row: dict[str, Any] = {c.name: None for c in generations.columns}
    row.update(
        id=gen_id,
        request_id=gen_id,
        key_hash=key_hash,
        model="test/alpha",
        api_type="completions",
        streamed=False,
        cancelled=False,
        created_at=datetime.now(UTC),
        total_cost=Decimal(cost),
        is_byok=False,
        provider_responses=[{"status": 200}],
        **{c: 0 for c in ("tokens_prompt", "tokens_completion", "native_tokens_prompt", "native_tokens_completion",
                          "native_tokens_reasoning", "native_tokens_cached", "native_tokens_cache_write")},
    )  # fmt: skip
    return row


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    fresh = FreshDatabase()
    yield fresh.url or f"sqlite+aiosqlite:///{tmp_path / 'journal.db'}"
    fresh.drop()


async def _database(url: str) -> Database:
    db = Database(url)
    await db.migrate()
    return db


async def _stored(db: Database, scope: str) -> tuple[int, Decimal | None, int | None]:
    """Generations stored, and the scope's total usage and request count."""
    async with db.engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(generations))).scalar()
        c = usage_counters.c
        query = select(c.usage, c.requests).where(c.scope == scope, c.period == "total")
        row = (await conn.execute(query)).first()
    return int(count or 0), (row[0] if row else None), (row[1] if row else None)


def _spend(key_scope: str, cost: str) -> Spend:
    return Spend((key_scope, INSTANCE), Decimal(cost), Decimal(0), window_starts(datetime.now(UTC)))


def test_replay_writes_each_generation_and_its_spend_once(db_url, tmp_path):
    journal_dir = tmp_path / "data"
    costs = ["0.000123456789012345", "0.5", "0"]
    total = sum(Decimal(c) for c in costs)
    journal = Journal(journal_dir)
    for i, cost in enumerate(costs):
        journal.append(_row(f"gen-{i}", "h" * 64, cost), None, _spend("key:" + "h" * 64, cost))
    path = journal.current.path
    # The process dies inside its last write: a torn record, after which no client was answered.
    journal.append(_row("gen-torn", "h" * 64, "9"), None, _spend("key:" + "h" * 64, "9"))
    os.truncate(path, path.stat().st_size - 5)
    kept = tmp_path / "copy.log"
    shutil.copy(path, kept)
    journal.close(everything_committed=False)  # what a kill leaves: the file, and no lock on it

    async def scenario() -> None:
        db = await _database(db_url)
        try:
            done = await replay(db, journal_dir)
            assert (done.generations, done.skipped, done.cost) == (3, 0, total)
            assert not path.exists()
            assert await _stored(db, "key:" + "h" * 64) == (3, total, 3)
            assert await _stored(db, INSTANCE) == (3, total, 3)

            # The same records again (a batch committed just before the crash): nothing counts twice.
            shutil.copy(kept, journal_dir / "journal-1-1.log")
            again = await replay(db, journal_dir)
            assert (again.generations, again.skipped) == (0, 3)
            assert await _stored(db, INSTANCE) == (3, total, 3)
        finally:
            await db.close()

    asyncio.run(scenario())


def test_a_segment_that_cannot_be_read_is_set_aside_and_the_others_replayed(db_url, tmp_path):
    journal_dir = tmp_path / "data"
    journal = Journal(journal_dir)
    journal.append(_row("gen-good", "g" * 64, "2"), None, _spend("key:" + "g" * 64, "2"))
    journal.close(everything_committed=False)
    broken = journal_dir / "journal-1-1.log"
    broken.write_bytes(b"\x03\x00\x00\x00\xc1\xc1\xc1")  # a whole record, but not msgpack

    async def scenario() -> None:
        db = await _database(db_url)
        try:
            done = await replay(db, journal_dir)
            assert (done.generations, done.cost) == (1, Decimal(2))
            assert await _stored(db, INSTANCE) == (1, Decimal(2), 1)
        finally:
            await db.close()

    asyncio.run(scenario())
    assert [p.name for p in journal_dir.iterdir()] == ["journal-1-1.failed"]


def test_a_live_workers_journal_is_not_replayed(db_url, tmp_path):
    journal = Journal(tmp_path / "data")

    async def scenario() -> None:
        db = await _database(db_url)
        try:
            journal.append(_row("gen-live", "k" * 64, "1"), None, _spend("key:" + "k" * 64, "1"))
            done = await replay(db, tmp_path / "data")
            assert done.segments == 0
            assert journal.current.path.exists()
            assert (await _stored(db, INSTANCE))[0] == 0
        finally:
            await db.close()

    try:
        asyncio.run(scenario())
    finally:
        journal.close(everything_committed=True)
    assert not list((tmp_path / "data").iterdir())


def test_a_committed_segment_is_deleted_and_later_records_kept(tmp_path):
    """What the writer does at each flush: seal, write the batch, delete what it covered."""
    journal = Journal(tmp_path)
    journal.append(_row("a", "k" * 64, "1"), None, None)
    covered = journal.seal(last_flush_failed=False)
    journal.append(_row("b", "k" * 64, "1"), None, None)  # recorded while the batch is being written
    journal.committed(covered)
    left = list(tmp_path.glob("journal-*.log"))
    assert left == [journal.current.path]
    assert [r[0]["id"] for r in read_records(left[0].read_bytes())] == ["b"]
    journal.close(everything_committed=True)
