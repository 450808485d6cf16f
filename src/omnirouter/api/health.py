"""GET /health/live and /health/ready: what an orchestrator or a load balancer probes.

Unauthenticated and cheap: liveness answers as soon as the worker's event loop does; readiness reads
what the worker already knows (stopping, the recorder's verdict on the database, a Redis ping shared
by every probe within a second) and sends nothing to the database itself.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Literal

import msgspec
from starlette.requests import Request
from starlette.routing import Route

from omnirouter.api.jsonio import JSONResponse

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from omnirouter.shutdown import Shutdown
    from omnirouter.store.db import Database

REDIS_CHECK_SECONDS = 1.0  # probes within this long share one PING
REDIS_PING_TIMEOUT = 1.0

Check = Literal["ok", "unreachable"]


class Live(msgspec.Struct):
    status: Literal["ok"] = "ok"


class ReadyChecks(msgspec.Struct, omit_defaults=True):
    database: Check
    redis: Check | None = None  # only with redis_url


class Ready(msgspec.Struct, omit_defaults=True):
    """The worker's readiness: `reason` says why it is not ready (absent when it is). `degraded`: ready,
    without Redis (budgets and rate limits held through the database, routing health per instance)."""

    status: Literal["ok", "degraded", "unavailable"]
    checks: ReadyChecks | None = None  # absent only while starting
    reason: Literal["draining", "database_unreachable", "starting"] | None = None


class Readiness:
    """Whether this worker should be sent requests."""

    def __init__(self, shutdown: Shutdown, db: Database, redis: Redis | None) -> None:
        self.shutdown = shutdown
        self.db = db
        self.redis = redis
        self._redis_ok = True
        self._redis_checked = -REDIS_CHECK_SECONDS
        self._ping: asyncio.Task[bool] | None = None

    async def check(self) -> Ready:
        # The recorder touches the database every flush and re-reads it every sync_interval; a failure
        # there marks the outage, and its next success ends it.
        checks = ReadyChecks(database="unreachable" if self.db.outage.down else "ok")
        if self.redis is not None:
            checks.redis = "ok" if await self._redis_reachable() else "unreachable"
        reason = None
        if self.shutdown.draining:
            reason = "draining"
        elif checks.database != "ok":
            reason = "database_unreachable"
        if reason:
            return Ready(status="unavailable", checks=checks, reason=reason)
        # Without Redis every instance still serves (it falls back): out of rotation, all of them
        # at once, it would turn a degraded cluster into an outage.
        return Ready(status="degraded" if checks.redis == "unreachable" else "ok", checks=checks)

    async def _redis_reachable(self) -> bool:
        if time.monotonic() - self._redis_checked < REDIS_CHECK_SECONDS:
            return self._redis_ok
        if self._ping is None or self._ping.done():
            self._ping = asyncio.create_task(self._ping_redis())
        return await asyncio.shield(self._ping)

    async def _ping_redis(self) -> bool:
        assert self.redis is not None
        try:
            ok = bool(await asyncio.wait_for(self.redis.ping(), REDIS_PING_TIMEOUT))
        except Exception:  # refused, timed out, reset: all say the same to a probe
            ok = False
        self._redis_ok, self._redis_checked = ok, time.monotonic()
        return ok


async def live(request: Request) -> JSONResponse:
    return JSONResponse(Live(), status_code=200)


async def ready(request: Request) -> JSONResponse:
    st = getattr(request.app.state, "omni", None)
    if st is None or st.readiness is None:  # not started (uvicorn serves nothing before startup)
        answer = Ready(status="unavailable", reason="starting")
    else:
        answer = await st.readiness.check()
    return JSONResponse(answer, status_code=200 if answer.reason is None else 503)


routes = [
    Route("/health/live", live, methods=["GET"]),
    Route("/health/ready", ready, methods=["GET"]),
]
