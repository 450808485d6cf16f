"""The video job table's leases, on the database itself: one claimant at a time, a lease that ran out
passes to another worker, and only the holder's completion lands, so a job is billed once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import update

from omnirouter.providers.videos.base import COMPLETED, IN_PROGRESS, PENDING
from omnirouter.store.db import Database
from omnirouter.store.tables import video_jobs
from omnirouter.videos import jobs
from omnirouter.videos.jobs import Job
from tests.gateway import FreshDatabase

RETENTION = timedelta(days=7)


@pytest.fixture
def fresh() -> Iterator[FreshDatabase]:
    database = FreshDatabase()  # PostgreSQL's, when the suite runs on it
    yield database
    database.drop()


@pytest.fixture
async def db(tmp_path: Path, fresh: FreshDatabase) -> AsyncIterator[Database]:
    database = Database(fresh.url or f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    await database.migrate()
    yield database
    await database.close()


def a_job() -> Job:
    return Job(
        id=jobs.new_job_id(), key_hash="k" * 64, generation_id="gen-1-x", model="m/v", provider_slug="p",
        endpoint_slug="p", upstream_id="up-1", status=PENDING, error=None, request={"prompt": "x"}, seconds=None,
        cost=None, outputs=0, workspace_id=None, created_at=jobs.now(), completed_at=None, expires_at=None,
        poll_interval=0.0, poll_errors=0,
    )  # fmt: skip


async def expire_lease(db: Database, job_id: str) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            update(video_jobs).where(video_jobs.c.id == job_id).values(lease_until=jobs.now() - timedelta(seconds=1))
        )


async def test_a_job_id_has_openrouters_form() -> None:
    job_id = jobs.new_job_id()
    _, _, stamp, rest = job_id.split("-")
    assert job_id.startswith("gen-vid-") and stamp.isdigit() and len(rest) == 20 and rest.isalnum()


async def test_one_claimant_wins(db: Database) -> None:
    job = a_job()
    await jobs.create(db, job, first_poll=0)
    claims = await asyncio.gather(*(jobs.claim(db, job.id) for _ in range(8)))
    assert sum(c is not None for c in claims) == 1
    ids, upcoming = await jobs.due(db)
    assert ids == [] and upcoming is not None and upcoming > jobs.now()  # leased: due when the lease runs out


async def test_a_job_not_yet_due_is_not_claimed(db: Database) -> None:
    job = a_job()
    await jobs.create(db, job, first_poll=60)
    assert await jobs.claim(db, job.id) is None
    ids, upcoming = await jobs.due(db)
    assert ids == [] and upcoming is not None and upcoming > jobs.now() + timedelta(seconds=50)


async def test_a_stalled_holder_loses_the_job_and_cannot_bill_it(db: Database) -> None:
    job = a_job()
    await jobs.create(db, job, first_poll=0)
    stalled = await jobs.claim(db, job.id)
    assert stalled is not None
    await expire_lease(db, job.id)  # it stalled past its lease
    taker = await jobs.claim(db, job.id)
    assert taker is not None and taker.lease_token != stalled.lease_token
    assert await jobs.complete(db, stalled, Decimal(4), Decimal("0.4"), 1, RETENTION) is None
    assert not await jobs.reschedule(db, stalled, IN_PROGRESS, 1.0)
    assert await jobs.complete(db, taker, Decimal(4), Decimal("0.4"), 1, RETENTION) is not None
    done = await jobs.get(db, job.id)
    assert done is not None and done.status == COMPLETED and done.cost == Decimal("0.4") and done.lease_token is None
    assert await jobs.claim(db, job.id) is None  # finished: nobody polls it again


async def test_a_rescheduled_job_is_due_again_after_its_interval(db: Database) -> None:
    job = a_job()
    await jobs.create(db, job, first_poll=0)
    held = await jobs.claim(db, job.id)
    assert held is not None and await jobs.reschedule(db, held, IN_PROGRESS, 0.0, errors=2)
    again = await jobs.claim(db, job.id)
    assert again is not None and again.status == IN_PROGRESS and again.poll_errors == 2


async def test_retention_picks_expired_and_unknown_jobs(db: Database) -> None:
    kept, old = a_job(), a_job()
    for job in (kept, old):
        await jobs.create(db, job, first_poll=0)
        held = await jobs.claim(db, job.id)
        assert held is not None
        await jobs.complete(db, held, Decimal(1), Decimal("0.1"), 1, RETENTION if job is kept else timedelta(0))
    assert sorted(await jobs.past_retention(db, [kept.id, old.id, "gen-vid-1-unknown"])) == sorted(
        [old.id, "gen-vid-1-unknown"]
    )
