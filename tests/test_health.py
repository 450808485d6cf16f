"""GET /health/live and /health/ready: unauthenticated probes at the root and under /api/v1 and /v1;
readiness is 503 with its reason while the worker stops, the database is unreachable, or Redis (with
redis_url) is."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.cluster import RedisServer
from tests.conftest import standard_config
from tests.gateway import Gateway
from tests.test_outage import pg_behind_proxy  # noqa: F401  (fixture)

PREFIXES = ("", "/api/v1", "/v1")


def _root(api: str) -> str:
    return api.removesuffix("/api/v1")


def _until(probe: Callable[[], httpx.Response], status: int, timeout: float = 15) -> httpx.Response:
    """Probe until it answers `status` (as an orchestrator polls), or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while (r := probe()).status_code != status:
        assert time.monotonic() < deadline, f"still {r.status_code} {r.text}, expected {status}"
        time.sleep(0.05)
    return r


def test_probes_answer_everywhere_without_a_key(serve):
    s = serve("--sandbox")
    try:
        root = _root(s.api)
        for prefix in PREFIXES:
            live = httpx.get(f"{root}{prefix}/health/live", timeout=10)
            assert (live.status_code, live.json()) == (200, {"status": "ok"})
            ready = httpx.get(f"{root}{prefix}/health/ready", timeout=10)
            assert (ready.status_code, ready.json()) == (200, {"status": "ok", "checks": {"database": "ok"}})
            assert httpx.head(f"{root}{prefix}/health/ready", timeout=10).status_code == 200
            # Not something to change: the probes are GET only.
            assert httpx.post(f"{root}{prefix}/health/ready", timeout=10).status_code == 405
        assert httpx.get(f"{root}/health/nothing", timeout=10).status_code == 404
    finally:
        s.stop()


def _in_loop(gw: Gateway, fn: Callable[[], Any]) -> None:
    assert gw.loop is not None
    done = asyncio.run_coroutine_threadsafe(asyncio.sleep(0), gw.loop)
    gw.loop.call_soon_threadsafe(fn)
    done.result(timeout=10)


def test_readiness_is_503_while_the_worker_stops(tmp_path: Path, fake_a, fake_b):
    """What a load balancer polling an instance sees once it is stopping (here begun by hand: a
    server in a thread has no signals of its own), while liveness stays 200."""
    gw = Gateway(tmp_path, standard_config(fake_a.base_url, fake_b.base_url)).start()
    try:
        assert httpx.get(gw.url + "/health/ready", timeout=10).status_code == 200
        _in_loop(gw, gw.state.readiness.shutdown.begin)
        for prefix in PREFIXES:
            r = httpx.get(f"{gw.url}{prefix}/health/ready", timeout=10)
            assert r.status_code == 503
            assert r.json() == {"status": "unavailable", "checks": {"database": "ok"}, "reason": "draining"}
            assert httpx.get(f"{gw.url}{prefix}/health/live", timeout=10).status_code == 200
    finally:
        gw.stop()


def test_readiness_follows_the_database(pg_behind_proxy, tmp_path: Path, fake_a, fake_b):  # noqa: F811
    proxy, through, _direct = pg_behind_proxy
    gw = Gateway(tmp_path, standard_config(fake_a.base_url, fake_b.base_url), database_url=through).start()
    try:

        def ready() -> httpx.Response:
            return httpx.get(gw.url + "/health/ready", timeout=10)

        assert ready().status_code == 200
        proxy.cut()
        down = _until(ready, 503)
        assert down.json() == {
            "status": "unavailable",
            "checks": {"database": "unreachable"},
            "reason": "database_unreachable",
        }
        assert httpx.get(gw.url + "/health/live", timeout=10).status_code == 200
        proxy.open()
        assert _until(ready, 200).json() == {"status": "ok", "checks": {"database": "ok"}}
    finally:
        gw.stop()


def test_readiness_says_redis_is_missing_and_stays_ready(pg_behind_proxy, tmp_path: Path, fake_a, fake_b):  # noqa: F811
    _proxy, through, _direct = pg_behind_proxy
    redis = RedisServer(tmp_path)
    config = standard_config(fake_a.base_url, fake_b.base_url)
    gw = Gateway(tmp_path, config, database_url=through, redis_url=redis.url).start()
    try:

        def ready() -> httpx.Response:
            return httpx.get(gw.url + "/health/ready", timeout=10)

        assert ready().json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
        redis.kill()
        # Still ready (every instance serves without Redis, with the database holding budgets and
        # rate limits), and saying what it lacks.
        deadline = time.monotonic() + 15
        while (down := ready()).json()["status"] != "degraded":
            assert down.status_code == 200 and time.monotonic() < deadline, down.text
            time.sleep(0.05)
        assert down.status_code == 200
        assert down.json() == {"status": "degraded", "checks": {"database": "ok", "redis": "unreachable"}}
        redis.start()
        deadline = time.monotonic() + 15
        while (up := ready()).json()["status"] != "ok":
            assert up.status_code == 200 and time.monotonic() < deadline, up.text
            time.sleep(0.05)
        assert up.json()["checks"] == {"database": "ok", "redis": "ok"}
    finally:
        gw.stop()
        redis.stop()
