"""Video jobs in the database, so they outlive the worker that took them.

Several workers (and instances) may poll the same table. A worker polls a job only while it holds its
lease: `claim` sets a fresh token and an expiry with a conditional UPDATE that succeeds for one
claimant only, and every later write names that token, so a worker whose lease ran out (it stalled,
another took over) changes nothing. The completion is one such write, and it sets `billed_at`: the
worker whose write lands bills the job, and no other can.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, or_, select, update

from omnirouter.api.ids import generation_id
from omnirouter.providers.videos.base import COMPLETED, EXPIRED, FAILED, IN_PROGRESS, PENDING
from omnirouter.store.db import Database
from omnirouter.store.tables import video_jobs

ACTIVE = (PENDING, IN_PROGRESS)
LEASE = timedelta(minutes=2)  # how long a claim lasts: far longer than one poll and one download


def now() -> datetime:
    return datetime.now(UTC)


def new_job_id() -> str:
    """`gen-vid-<unix time>-<20 base62>`, as OpenRouter's video job ids."""
    return "gen-vid-" + generation_id().removeprefix("gen-")


def _aware(value: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back (in UTC, as they were written)."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@dataclass
class Job:
    id: str
    key_hash: str
    generation_id: str
    model: str
    provider_slug: str
    endpoint_slug: str
    upstream_id: str
    status: str
    error: str | None
    request: dict[str, Any]
    seconds: Decimal | None
    cost: Decimal | None
    outputs: int
    workspace_id: str | None
    created_at: datetime
    completed_at: datetime | None
    expires_at: datetime | None
    poll_interval: float
    poll_errors: int
    byok_key_id: str | None = None  # submitted with the workspace's own key: polled and billed as BYOK
    lease_token: str | None = None

    @classmethod
    def of(cls, row: Any) -> Job:
        m = row._mapping
        return cls(
            id=m["id"], key_hash=m["key_hash"], generation_id=m["generation_id"], model=m["model"],
            provider_slug=m["provider_slug"], endpoint_slug=m["endpoint_slug"], upstream_id=m["upstream_id"],
            status=m["status"], error=m["error"], request=m["request"], seconds=m["seconds"], cost=m["cost"],
            outputs=m["outputs"], workspace_id=m["workspace_id"], created_at=_aware(m["created_at"]),  # type: ignore[arg-type]
            completed_at=_aware(m["completed_at"]), expires_at=_aware(m["expires_at"]),
            poll_interval=m["poll_interval"], poll_errors=m["poll_errors"], byok_key_id=m["byok_key_id"],
            lease_token=m["lease_token"],
        )  # fmt: skip

    def shown_status(self, at: datetime | None = None) -> str:
        """Its status for the client: a completed job whose videos are gone is `expired`."""
        if self.status == COMPLETED and self.expires_at is not None and self.expires_at <= (at or now()):
            return EXPIRED
        return self.status


async def create(db: Database, job: Job, first_poll: float) -> None:
    at = now()
    async with db.engine.begin() as conn:
        await conn.execute(
            video_jobs.insert().values(
                id=job.id, key_hash=job.key_hash, generation_id=job.generation_id, model=job.model,
                provider_slug=job.provider_slug, endpoint_slug=job.endpoint_slug, upstream_id=job.upstream_id,
                status=job.status, request=job.request, outputs=0, workspace_id=job.workspace_id,
                byok_key_id=job.byok_key_id,
                created_at=at, updated_at=at, next_poll_at=at + timedelta(seconds=first_poll),
                poll_interval=first_poll, poll_errors=0,
            )
        )  # fmt: skip


async def get(db: Database, job_id: str) -> Job | None:
    async with db.engine.connect() as conn:
        row = (await conn.execute(select(video_jobs).where(video_jobs.c.id == job_id))).first()
    return Job.of(row) if row is not None else None


async def due(db: Database, limit: int = 32) -> tuple[list[str], datetime | None]:
    """Unfinished jobs whose poll is due and whose lease is free, and when the next one falls due."""
    at = now()
    free = or_(video_jobs.c.lease_until.is_(None), video_jobs.c.lease_until < at)
    async with db.engine.connect() as conn:
        ready = await conn.execute(
            select(video_jobs.c.id)
            .where(video_jobs.c.status.in_(ACTIVE), video_jobs.c.next_poll_at <= at, free)
            .order_by(video_jobs.c.next_poll_at)
            .limit(limit)
        )
        ids = [r[0] for r in ready]
        upcoming = await conn.execute(
            select(video_jobs.c.next_poll_at, video_jobs.c.lease_until)
            .where(video_jobs.c.status.in_(ACTIVE))
            .order_by(video_jobs.c.next_poll_at)
            .limit(1)
        )
        first = upcoming.first()
    nxt = None
    if first is not None:  # a leased job may be picked up when its lease runs out
        nxt = max(t for t in (_aware(first[0]), _aware(first[1])) if t is not None)
    return ids, nxt


async def unfinished(db: Database, job_ids: list[str]) -> set[str]:
    """Which of these jobs are still pending or in progress."""
    if not job_ids:
        return set()
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            select(video_jobs.c.id).where(video_jobs.c.id.in_(job_ids), video_jobs.c.status.in_(ACTIVE))
        )
        return {r[0] for r in rows}


async def claim(db: Database, job_id: str) -> Job | None:
    """Take the job's lease; None when it is finished, not due, or another worker holds it."""
    at, token = now(), str(uuid.uuid4())
    free = or_(video_jobs.c.lease_until.is_(None), video_jobs.c.lease_until < at)
    async with db.engine.begin() as conn:
        taken = await conn.execute(
            update(video_jobs)
            .where(video_jobs.c.id == job_id, video_jobs.c.status.in_(ACTIVE), video_jobs.c.next_poll_at <= at, free)
            .values(lease_token=token, lease_until=at + LEASE)
        )
        if taken.rowcount != 1:
            return None
        row = (await conn.execute(select(video_jobs).where(video_jobs.c.id == job_id))).first()
    return Job.of(row)


def _held(job: Job) -> Any:
    return and_(video_jobs.c.id == job.id, video_jobs.c.lease_token == job.lease_token)


async def reschedule(db: Database, job: Job, status: str, interval: float, *, errors: int = 0) -> bool:
    """Still running (or the upstream failed to answer): poll again in `interval` seconds."""
    at = now()
    async with db.engine.begin() as conn:
        done = await conn.execute(
            update(video_jobs).where(_held(job)).values(
                status=status, poll_interval=interval, poll_errors=errors, updated_at=at,
                next_poll_at=at + timedelta(seconds=interval), lease_token=None, lease_until=None,
            )
        )  # fmt: skip
    return done.rowcount == 1


async def complete(
    db: Database, job: Job, seconds: Decimal, cost: Decimal, outputs: int, retention: timedelta
) -> datetime | None:
    """Record the completion and that it is billed, if this worker still holds the lease; returns when
    its content expires (None: another worker took the job over and bills it)."""
    at = now()
    async with db.engine.begin() as conn:
        done = await conn.execute(
            update(video_jobs).where(_held(job), video_jobs.c.billed_at.is_(None)).values(
                status=COMPLETED, seconds=seconds, cost=cost, outputs=outputs, updated_at=at, completed_at=at,
                billed_at=at, expires_at=at + retention, lease_token=None, lease_until=None,
            )
        )  # fmt: skip
    return at + retention if done.rowcount == 1 else None


async def fail(db: Database, job: Job, message: str) -> bool:
    at = now()
    async with db.engine.begin() as conn:
        done = await conn.execute(
            update(video_jobs).where(_held(job)).values(
                status=FAILED, error=message, updated_at=at, completed_at=at, lease_token=None, lease_until=None,
            )
        )  # fmt: skip
    return done.rowcount == 1


async def past_retention(db: Database, job_ids: list[str]) -> list[str]:
    """Of these jobs (whose videos a machine holds), those whose videos should be gone: expired, or
    no longer known."""
    if not job_ids:
        return []
    async with db.engine.connect() as conn:
        rows = await conn.execute(select(video_jobs.c.id, video_jobs.c.expires_at).where(video_jobs.c.id.in_(job_ids)))
        keep = {r[0] for r in rows if r[1] is not None and _aware(r[1]) > now()}  # type: ignore[operator]
    return [j for j in job_ids if j not in keep]
