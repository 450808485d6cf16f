"""What a key's rpm_limit/tpm_limit costs per admission (accounting/ratelimit.py), in each store:
SQLite (the writer thread, BEGIN IMMEDIATE), PostgreSQL (the key's row lock) and Redis (one Lua script).

    python -m bench.ratelimit [--postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test] [--redis]

One admission at a time gives the round trip a request of a limited key waits for (p50/p99); then
`--concurrency` admissions at once on one key (the worst case: all on one row or one Redis key) give
admissions per second. Keys without a limit skip all this (nothing is measured for them: no code runs).
PostgreSQL gets a database of its own, dropped afterwards; Redis a redis-server of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from omnirouter.accounting.ratelimit import RateLimits
from omnirouter.cluster.redis import connect
from omnirouter.governance.keys import KeyRecord
from omnirouter.store.db import Database


def _key() -> KeyRecord:
    return KeyRecord(
        hash=secrets.token_hex(32), name="bench", label="x", created_at=datetime.now(UTC),
        rpm_limit=10**9, tpm_limit=10**9,
    )  # fmt: skip


async def _measure(limits: RateLimits, sequential: int, concurrency: int, rounds: int) -> dict[str, float]:
    key = _key()
    for _ in range(20):  # warm: connections, the row, the script
        await limits.admit(key, 10)
    times = []
    for _ in range(sequential):
        t = time.perf_counter()
        await limits.admit(key, 10)
        times.append(time.perf_counter() - t)
    times.sort()
    t = time.perf_counter()
    for _ in range(rounds):
        await asyncio.gather(*(limits.admit(key, 10) for _ in range(concurrency)))
    elapsed = time.perf_counter() - t
    return {
        "p50_ms": statistics.median(times) * 1000,
        "p99_ms": times[int(len(times) * 0.99)] * 1000,
        "per_s": rounds * concurrency / elapsed,
    }


async def _pg_admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--postgres", help="a PostgreSQL server's URL (a database of the bench's own is made there)")
    p.add_argument("--redis", action="store_true", help="also Redis (starts redis-server; needs --postgres)")
    p.add_argument("--sequential", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--e2e", type=int, default=0, help="also this many chat requests per key through a served instance")
    args = p.parse_args()
    if args.e2e:
        _e2e(None, None, args.e2e)
    runs = (args.sequential, args.concurrency, args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        await db.migrate()
        _report("sqlite (database path)", await _measure(RateLimits(db), *runs))
        await db.close()
        if not args.postgres:
            return
        name = "omni_bench_" + secrets.token_hex(4)
        await _pg_admin(args.postgres, f'CREATE DATABASE "{name}"')
        redis_proc = None
        try:
            db = Database(args.postgres.rsplit("/", 1)[0] + "/" + name)
            await db.migrate()
            _report("postgresql (database path)", await _measure(RateLimits(db), *runs))
            if args.e2e:
                _e2e(db.url, None, args.e2e)
            if args.redis and (server := shutil.which("redis-server")):
                port = _free_port()
                redis_proc = subprocess.Popen(
                    [server, "--port", str(port), "--save", "", "--dir", tmp], stdout=subprocess.DEVNULL
                )
                redis = connect(f"redis://127.0.0.1:{port}/0")
                for _ in range(100):
                    try:
                        await redis.ping()
                        break
                    except Exception:
                        await asyncio.sleep(0.05)
                _report("redis (Lua script)", await _measure(RateLimits(db, redis), *runs))
                if args.e2e:
                    _e2e(db.url, f"redis://127.0.0.1:{port}/0", args.e2e)
                await redis.aclose()
            await db.close()
        finally:
            if redis_proc is not None:
                redis_proc.kill()
            await _pg_admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _e2e(database_url: str | None, redis_url: str | None, pairs: int) -> None:
    """A served instance: chat answers of an unlimited key and a limited one, interleaved, one at a time."""
    import httpx

    from omnirouter.governance.keys import new_key

    with tempfile.TemporaryDirectory() as tmp:
        port, management = _free_port(), new_key()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIROUTER_")}
        env.update(OMNIROUTER_DATA_DIR=tmp, OMNIROUTER_MANAGEMENT_KEY=management, OMNIROUTER_LOG_LEVEL="warning")
        if database_url:
            env["OMNIROUTER_DATABASE_URL"] = database_url
        if redis_url:
            env["OMNIROUTER_REDIS_URL"] = redis_url
        proc = subprocess.Popen(
            [sys.executable, "-m", "omnirouter", "serve", "--sandbox", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        api = f"http://127.0.0.1:{port}/api/v1"
        try:
            for _ in range(300):
                try:
                    httpx.get(api + "/models", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            admin = {"Authorization": f"Bearer {management}"}
            keys = {
                name: httpx.post(api + "/keys", headers=admin, json={"name": name, **fields}, timeout=10).json()["key"]
                for name, fields in (("unlimited", {}), ("limited", {"rpm_limit": 10**9, "tpm_limit": 10**9}))
            }
            body = {"model": "sandbox/echo", "messages": [{"role": "user", "content": "hi"}]}
            times: dict[str, list[float]] = {name: [] for name in keys}
            with httpx.Client() as client:
                for i in range(pairs + 50):
                    for name in sorted(keys, reverse=bool(i % 2)):  # alternate which goes first
                        t = time.perf_counter()
                        r = client.post(api + "/chat/completions", headers={"Authorization": f"Bearer {keys[name]}"},
                                        json=body)  # fmt: skip
                        elapsed = time.perf_counter() - t
                        assert r.status_code == 200, r.text
                        if i >= 50:  # warm-up left out
                            times[name].append(elapsed)
            p50 = {name: statistics.median(t) * 1000 for name, t in times.items()}
            where = "redis" if redis_url else "postgresql" if database_url else "sqlite"
            print(f"served, {where:10} chat p50: unlimited key {p50['unlimited']:.3f} ms, "
                  f"limited key {p50['limited']:.3f} ms (+{p50['limited'] - p50['unlimited']:.3f} ms)")  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _report(name: str, r: dict[str, float]) -> None:
    print(f"{name:28} one at a time p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms; "
          f"concurrent on one key {r['per_s']:,.0f} admissions/s")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
