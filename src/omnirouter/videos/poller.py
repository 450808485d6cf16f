"""Each worker's video poller: it follows unfinished jobs upstream until they complete or fail.

Any worker may poll any job (jobs.py leases make one of them do it at a time), so jobs submitted
before a restart, or on another instance, are picked up by whoever runs. A job is polled first
`video_poll_initial` seconds after it was submitted, then at intervals that double up to
`video_poll_max`. A completed job's videos are downloaded under the data dir, the completion is
recorded, and only then the key is charged (billing.py): once, whichever worker gets there.

The worker that took a job also holds the worst case it reserved for it, so that the key's limit
counts jobs still running there; it gives it back when the job ends, wherever it ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

from omnirouter.accounting.ledger import Reservation
from omnirouter.accounting.units import Units
from omnirouter.catalog.types import Endpoint, Model, Provider
from omnirouter.pipeline.modality import Upstream
from omnirouter.providers.base import Timeouts, UpstreamError
from omnirouter.providers.videos import API_OF
from omnirouter.providers.videos.base import COMPLETED, FAILED, requested_seconds
from omnirouter.state import AppState
from omnirouter.store.outage import unreachable
from omnirouter.videos import billing, content, jobs
from omnirouter.videos.jobs import Job

log = logging.getLogger("omnirouter.videos")

MAX_POLL_ERRORS = 10  # upstream failures in a row before a job is given up as failed
# Answers that say the provider will never hand over this job (others, 401 and 403 included, may pass:
# a key being rotated, an outage, are retried up to MAX_POLL_ERRORS times).
GONE = frozenset({400, 404, 410, 422})
MAX_AGE = timedelta(days=1)  # a job still unfinished after this is given up as failed (Sora and Veo take minutes)
CONCURRENT_POLLS = 8
CLEANUP_EVERY = 600.0  # seconds between passes over the stored videos
CLOSE_GRACE = 10.0  # seconds a stopping worker gives the polls under way


class Poller:
    def __init__(self, st: AppState) -> None:
        self.st = st
        self.wake = asyncio.Event()
        self.held: dict[str, Reservation] = {}  # job id -> what this worker reserved when it took the job
        self._task: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(CONCURRENT_POLLS)
        self._last_cleanup = self._last_forget = 0.0
        self._stopping = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="omnirouter-video-poller")

    async def close(self) -> None:
        """Stop after the pass under way (a completion is recorded and billed, or not started), or
        cut it after CLOSE_GRACE seconds: an unfinished poll is repeated by the next worker."""
        if self._task is not None:
            self._stopping = True
            self.wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), CLOSE_GRACE)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for reservation in self.held.values():
            self.st.ledger.release(reservation)
        self.held.clear()

    def hold(self, job_id: str, reservation: Reservation) -> None:
        self.held[job_id] = reservation
        self.wake.set()

    def _release(self, job_id: str) -> None:
        if (reservation := self.held.pop(job_id, None)) is not None:
            self.st.ledger.release(reservation)

    # -- the loop
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self.wake.clear()
            wait = self.st.settings.video_poll_max
            try:
                ids, upcoming = await jobs.due(self.st.db)
                if ids:
                    await asyncio.gather(*(self._poll(job_id) for job_id in ids))
                now = loop.time()
                if self.held and now - self._last_forget >= self.st.settings.video_poll_initial:
                    self._last_forget = now
                    await self._forget_finished()
                if now - self._last_cleanup >= CLEANUP_EVERY:
                    self._last_cleanup = now
                    await self.cleanup()
                if ids:
                    continue  # more may be due
                if upcoming is not None:
                    wait = min(wait, max(0.01, (upcoming - jobs.now()).total_seconds()))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next pass retries; an outage is reported once, by the recorder
                if not unreachable(exc):
                    log.exception("video poller: a pass failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), wait)

    async def _forget_finished(self) -> None:
        """Give back what is held for jobs that ended elsewhere (another worker, before a restart)."""
        running = await jobs.unfinished(self.st.db, list(self.held))
        for job_id in [j for j in self.held if j not in running]:
            self._release(job_id)

    async def _poll(self, job_id: str) -> None:
        async with self._slots:
            job = await jobs.claim(self.st.db, job_id)
            if job is None:
                return
            try:
                await self._follow(job)
            except Exception:
                log.exception("video poller: job %s", job_id)
                await jobs.reschedule(self.st.db, job, job.status, self._backoff(job), errors=job.poll_errors + 1)

    def _backoff(self, job: Job) -> float:
        s = self.st.settings
        return min(s.video_poll_max, max(job.poll_interval, s.video_poll_initial) * 2)

    def where(self, job: Job) -> tuple[Model, Provider, Endpoint] | None:
        """The job's model, provider and endpoint in the current catalog."""
        model = self.st.catalog.model(job.model)
        if model is None:
            return None
        endpoint = next((ep for ep in model.endpoints if ep.slug == job.endpoint_slug), None)
        provider = self.st.catalog.provider(endpoint.provider) if endpoint is not None else None
        if endpoint is None or provider is None or provider.api not in API_OF:
            return None
        return model, provider, endpoint

    def upstream(self, provider: Provider, endpoint: Endpoint, job: Job) -> Upstream:
        """The job's provider, asked with the key the job was submitted with (the workspace's BYOK key,
        while it exists; else the provider's own)."""
        s = self.st.settings
        assert self.st.http is not None
        timeouts = Timeouts(s.upstream_connect_timeout, s.upstream_first_byte_timeout, s.upstream_total_timeout)
        return Upstream(self.st.http, provider, endpoint, timeouts, self._secret(provider, job))

    def _secret(self, provider: Provider, job: Job) -> str | None:
        if job.byok_key_id is None:
            return provider.api_key
        snapshot = self.st.governance.get("byok")
        keys = snapshot.by_workspace.get(job.workspace_id or "", {}).get(provider.slug, ()) if snapshot else ()
        found = next((k for k in keys if k.id == job.byok_key_id), None)
        return found.secret if found is not None else None  # deleted since: the provider will refuse

    async def _follow(self, job: Job) -> None:
        db = self.st.db
        found = self.where(job)
        if found is None:
            if await jobs.fail(db, job, "The job's provider is no longer configured on this gateway"):
                self._release(job.id)
            return
        model, provider, endpoint = found
        if jobs.now() - job.created_at > MAX_AGE:
            await self._failed(job, model, provider, endpoint, "The provider did not finish the video within a day")
            return
        api, up = API_OF[provider.api], self.upstream(provider, endpoint, job)
        try:
            progress = await api.progress(up, job.upstream_id, job.request)
            if progress.status == COMPLETED:
                videos = [await api.content(up, job.upstream_id, i, job.request) for i in range(progress.outputs)]
        except UpstreamError as err:
            if err.status in GONE:
                await self._failed(job, model, provider, endpoint, f"The provider refused the job: {err.message}")
            elif job.poll_errors + 1 >= MAX_POLL_ERRORS:
                await self._failed(job, model, provider, endpoint, f"The provider stopped answering: {err.message}")
            else:
                await jobs.reschedule(db, job, job.status, self._backoff(job), errors=job.poll_errors + 1)
            return
        if progress.status == FAILED:
            await self._failed(job, model, provider, endpoint, progress.error or "The video could not be generated")
        elif progress.status == COMPLETED:
            seconds = progress.seconds if progress.seconds is not None else Decimal(requested_seconds(job.request))
            await self._completed(job, model, provider, endpoint, seconds, videos)
        else:
            await jobs.reschedule(db, job, progress.status, self._backoff(job))

    async def _failed(self, job: Job, model: Model, provider: Provider, endpoint: Endpoint, message: str) -> None:
        if await jobs.fail(self.st.db, job, message):
            self._release(job.id)
            billing.record_failed(self.st, job, model, provider, endpoint, message)

    async def _completed(
        self, job: Job, model: Model, provider: Provider, endpoint: Endpoint, seconds: Decimal, videos: list[bytes]
    ) -> None:
        s = self.st.settings
        units = Units(video_seconds=seconds)
        cost = billing.cost_of(self.st, job, endpoint, units)
        partial = await asyncio.to_thread(content.write_partial, s.data_dir, job.id, videos)
        retention = timedelta(days=s.video_retention_days)
        if await jobs.complete(self.st.db, job, seconds, cost.total, len(videos), retention) is None:
            content.discard(partial)  # another worker took the job over: it keeps and bills it
            return
        content.publish(partial, s.data_dir, job.id)
        billing.charge_completed(self.st, job, model, provider, endpoint, units, self.held.pop(job.id, None))

    async def cleanup(self) -> int:
        """Delete the stored videos past their retention; how many jobs' videos went."""
        data_dir = self.st.settings.data_dir
        gone = await jobs.past_retention(self.st.db, content.stored(data_dir))
        for job_id in gone:
            content.delete(data_dir, job_id)
        return len(gone)


def poller_of(st: AppState) -> Poller:
    """The worker's poller, started on first use when the app did not start it."""
    poller: Any = getattr(st, "video_poller", None)
    if poller is None:
        poller = Poller(st)
        st.video_poller = poller  # type: ignore[attr-defined]
        poller.start()
    return poller
