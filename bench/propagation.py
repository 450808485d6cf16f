"""How long a key change made on one instance takes to be applied by another (issue 14), per transport
of the change notices (cluster/changes.py): Redis pub/sub, PostgreSQL LISTEN/NOTIFY, and the local
signal between processes sharing a SQLite file. Not part of the full run.

Two `omnirouter serve` instances share a database (and a redis-server of the run's own for "redis"),
with the database poll off (sync_interval 3600 s) so that only the notice can carry the change. Each
trial disables a key through instance A's API and then asks instance B for the key (GET /key, on a
kept-alive connection, back to back) until B refuses it; then enables it again and waits until B
serves it. The figure is the time from A's answer to B's first refusal (and, beside it, from A's
request: the management call included). "notice_alone": a transport's publish to its listener
hearing it, in this process, without the refresh a worker then makes.

    flock /work/notes/bench.lock .venv/bin/python -m bench.propagation [--trials 50]
        [--transports sqlite,postgres,redis]

PostgreSQL: the server of OMNIROUTER_DATABASE_URL, else postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
(a fresh database is created for the run and dropped after it).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.procs import (
    HOST,
    Proc,
    clean_env,
    free_port,
    http_json,
    install_cleanup,
    spawn,
    start_redis,
    stop_all,
    wait_http,
)  # fmt: skip

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
TIMEOUT = 10.0  # a trial that takes longer than this has failed (the poll is off)


class Client:
    """A kept-alive connection to one instance."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)

    def call(self, method: str, path: str, key: str, body: Any = None) -> int:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.conn.request(method, "/api/v1" + path, body=payload, headers=headers)
        resp = self.conn.getresponse()
        resp.read()
        return resp.status


def _pg_admin(url: str, statement: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def _start(name: str, work: Path, env: dict[str, str], management: str) -> tuple[Proc, int]:
    port = free_port()
    data = work / f"{name}-data"
    env = clean_env(
        OMNIROUTER_DATA_DIR=str(data),
        OMNIROUTER_MANAGEMENT_KEY=management,
        OMNIROUTER_LOG_LEVEL="warning",
        OMNIROUTER_SYNC_INTERVAL="3600",
        **env,
    )
    argv = [sys.executable, "-m", "omnirouter", "serve", "--sandbox", "--host", HOST, "--port", str(port)]
    proc = spawn(name, argv, cores=None, env=env, log_dir=work)
    wait_http(proc, port, "/api/v1/models", timeout=60)
    return proc, port


def _until(client: Client, key: str, status: int) -> float:
    """Ask for the key until the answer is `status`; the time it came (perf_counter)."""
    deadline = time.perf_counter() + TIMEOUT
    while True:
        got = client.call("GET", "/key", key)
        now = time.perf_counter()
        if got == status:
            return now
        if now > deadline:
            raise RuntimeError(f"the change did not arrive within {TIMEOUT} s (last answer {got})")


def measure(transport: str, trials: int, work: Path, pg_base: str) -> dict[str, list[float]]:
    management = "sk-or-v1-" + secrets.token_hex(32)
    env: dict[str, str] = {}
    dropped: str | None = None
    procs: list[Proc] = []
    try:
        if transport == "sqlite":
            env["OMNIROUTER_DATABASE_URL"] = f"sqlite+aiosqlite:///{work / 'shared.db'}"
        else:
            name = "omni_bench_" + secrets.token_hex(4)
            _pg_admin(pg_base, f'CREATE DATABASE "{name}"')
            dropped = name
            env["OMNIROUTER_DATABASE_URL"] = pg_base.rsplit("/", 1)[0] + "/" + name
        if transport == "redis":
            redis_proc, env["OMNIROUTER_REDIS_URL"] = start_redis(work)
            procs.append(redis_proc)
        a, a_port = _start(f"{transport}-a", work, env, management)
        procs.append(a)
        b, b_port = _start(f"{transport}-b", work, env, management)
        procs.append(b)

        status, made = http_json(
            a_port, "POST", "/api/v1/keys", {"name": "bench"}, {"Authorization": f"Bearer {management}"}
        )
        assert status == 201, made
        key, path = made["key"], f"/keys/{made['data']['hash']}"
        on_a, on_b = Client(a_port), Client(b_port)
        _until(on_b, key, 200)  # B holds the key

        out: dict[str, list[float]] = {"disable": [], "disable_from_request": [], "enable": []}
        for _ in range(trials):
            time.sleep(random.uniform(0.02, 0.1))  # not in step with the instances' flush rounds
            sent = time.perf_counter()
            assert on_a.call("PATCH", path, management, {"disabled": True}) == 200
            answered = time.perf_counter()
            refused = _until(on_b, key, 401)
            out["disable"].append(1000 * (refused - answered))
            out["disable_from_request"].append(1000 * (refused - sent))
            time.sleep(random.uniform(0.02, 0.1))
            assert on_a.call("PATCH", path, management, {"disabled": False}) == 200
            answered = time.perf_counter()
            out["enable"].append(1000 * (_until(on_b, key, 200) - answered))
        return out
    finally:
        for p in reversed(procs):
            p.stop()
        if dropped:
            _pg_admin(pg_base, f'DROP DATABASE IF EXISTS "{dropped}" WITH (FORCE)')


async def _notice_times(transport: str, trials: int, work: Path, pg_base: str, redis_url: str | None) -> list[float]:
    """Milliseconds from a transport's publish to its listener hearing it, in one process: the notice
    alone, without the refresh it sets off."""
    from omnirouter.cluster import changes
    from omnirouter.cluster import redis as cluster_redis
    from omnirouter.store.db import Database

    db = redis = None
    if transport == "sqlite":
        sender: Any = changes.LocalSignals(work / "signals")
        listener: Any = changes.LocalSignals(work / "signals")
    elif transport == "postgres":
        db = Database(pg_base)
        sender = listener = changes.PostgresNotices(db)
    else:
        redis = cluster_redis.connect(redis_url or "")
        sender = listener = changes.RedisNotices(redis)
    heard = asyncio.Event()
    task = asyncio.create_task(listener.listen(lambda origin: origin is not None and heard.set()))
    try:
        await asyncio.sleep(0.5)  # subscribed
        out = []
        for _ in range(trials):
            heard.clear()
            start = time.perf_counter()
            await sender.publish("bench")
            await asyncio.wait_for(heard.wait(), TIMEOUT)
            out.append(1000 * (time.perf_counter() - start))
            await asyncio.sleep(0.01)
        return out
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if db is not None:
            await db.close()
        if redis is not None:
            await redis.aclose()


def notice_only(transport: str, trials: int, work: Path, pg_base: str) -> list[float]:
    redis_proc = None
    redis_url = None
    try:
        if transport == "redis":
            redis_proc, redis_url = start_redis(work)
        return asyncio.run(_notice_times(transport, trials, work, pg_base, redis_url))
    finally:
        if redis_proc is not None:
            redis_proc.stop()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--transports", default="sqlite,postgres,redis")
    args = parser.parse_args()
    install_cleanup()
    pg_base = os.environ.get("OMNIROUTER_DATABASE_URL") or DEFAULT_PG
    rows = []
    try:
        for transport in args.transports.split(","):
            with tempfile.TemporaryDirectory(prefix=f"omni-propagation-{transport}-") as tmp:
                got = measure(transport, args.trials, Path(tmp), pg_base)
                got["notice_alone"] = notice_only(transport, args.trials, Path(tmp), pg_base)
            for what, values in got.items():
                rows.append((transport, what, len(values), statistics.median(values), pct(values, 0.99), max(values)))
    finally:
        stop_all()
    print(f"{'transport':10} {'change':22} {'n':>4} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for transport, what, n, p50, p99, top in rows:
        print(f"{transport:10} {what:22} {n:4d} {p50:8.2f} {p99:8.2f} {top:8.2f}")


if __name__ == "__main__":
    main()
