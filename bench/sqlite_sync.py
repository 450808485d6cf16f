"""How long a worker's sync (the read of shared state every `sync_interval`) waits while another
worker's flush holds SQLite's write lock (not part of the full run).

A second process stands for the other worker: it takes the write lock (BEGIN IMMEDIATE), holds it
for --hold ms while inserting rows, commits, and waits --gap ms, over and over. Meanwhile this process
runs the recorder's sync read (`_read_shared` through `Database.background`, as store/writer.py does)
every 20 ms and times each, once as before (every background transaction BEGIN IMMEDIATE) and once
as now (a read begins deferred), the two alternating in rounds.

    .venv/bin/python -m bench.sqlite_sync [--hold 50] [--gap 50] [--rounds 4] [--reads 100]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omnirouter.accounting.periods import window_starts
from omnirouter.store.db import Database
from omnirouter.store.writer import _read_shared


def _other_worker(path: str, hold_s: float, gap_s: float, stop: Any) -> None:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("CREATE TABLE IF NOT EXISTS scratch (n INTEGER, pad TEXT)")
    while not stop.is_set():
        conn.execute("BEGIN IMMEDIATE")
        end = time.monotonic() + hold_s
        while time.monotonic() < end:
            conn.executemany("INSERT INTO scratch VALUES (?, ?)", [(i, "x" * 200) for i in range(16)])
            time.sleep(0.001)  # the writer's slices hand the core over (store/bulk.py)
        conn.execute("COMMIT")
        time.sleep(gap_s)


def _old_run(db: Database, fn: Any, args: tuple[Any, ...], write: bool) -> Any:
    """Database._run before: a read began BEGIN IMMEDIATE like a write."""
    assert db.sync_engine is not None
    with db.sync_engine.begin() if write else db.sync_engine.connect() as conn:
        conn.execution_options(omnirouter_read_only=False)
        return fn(conn, *args)


async def _time_reads(db: Database, reads: int) -> list[float]:
    out = []
    for _ in range(reads):
        t = time.perf_counter()
        await db.background(_read_shared, None, window_starts(datetime.now(UTC)))
        out.append(1000 * (time.perf_counter() - t))
        await asyncio.sleep(0.02)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sqlite_sync", description=__doc__.split("\n")[0])
    parser.add_argument("--hold", type=float, default=50.0, help="ms the other worker holds the write lock")
    parser.add_argument("--gap", type=float, default=50.0, help="ms between its transactions")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--reads", type=int, default=100)
    args = parser.parse_args(argv)
    path = Path(tempfile.mkdtemp(prefix="bench-sqlite-sync-")) / "omnirouter.db"
    results: dict[str, list[float]] = {"before": [], "now": []}

    async def run() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.migrate()
        stop = multiprocessing.get_context("spawn").Event()
        other = multiprocessing.get_context("spawn").Process(
            target=_other_worker, args=(str(path), args.hold / 1000, args.gap / 1000, stop)
        )
        other.start()
        now_run = Database._run
        try:
            for r in range(args.rounds):
                for mode in ("before", "now") if r % 2 == 0 else ("now", "before"):
                    if mode == "before":
                        db._run = lambda fn, a, write: _old_run(db, fn, a, write)  # type: ignore[method-assign]
                    else:
                        db._run = lambda fn, a, write: now_run(db, fn, a, write)  # type: ignore[method-assign]
                    results[mode] += await _time_reads(db, args.reads)
        finally:
            stop.set()
            other.join(30)
            await db.close()

    asyncio.run(run())
    print(f"other worker: holds the write lock {args.hold:g} ms, then {args.gap:g} ms without it")
    for mode, ms in results.items():
        q = statistics.quantiles(ms, n=100)
        print(f"sync read, {mode:6s}: p50 {q[49]:7.2f} ms  p99 {q[98]:7.2f} ms  max {max(ms):7.2f} ms  (n={len(ms)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
