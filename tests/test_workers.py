"""Several workers: what each one's background thread locks in a shared SQLite database, and the
CPU each keeps to with `serve --pin-workers`."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from omnirouter.store import repo
from omnirouter.store.db import Database
from tests.served import children


def _read_version(conn) -> int:  # type: ignore[no-untyped-def]
    return repo.read_version(conn)


def test_a_background_read_does_not_wait_for_another_workers_write_lock(tmp_path: Path) -> None:
    """Another worker's flush holds the write lock; this worker's sync (a background read) still
    reads its snapshot, where it used to queue for the lock (BEGIN IMMEDIATE) behind the flush."""
    path = tmp_path / "omnirouter.db"

    async def main() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.migrate()
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            before = await db.background(_read_version)
            other.execute("BEGIN IMMEDIATE")  # the other worker's flush, under way
            other.execute("UPDATE state_version SET version = version + 1")
            # Without the lock: the committed version, not the other worker's pending one.
            assert await db.background(_read_version) == before
            other.execute("COMMIT")
            assert await db.background(_read_version) == before + 1
        finally:
            other.close()
            await db.close()

    asyncio.run(main())


def test_a_background_write_still_takes_the_write_lock_at_begin(tmp_path: Path) -> None:
    """Writes begin IMMEDIATE: a read-then-write of a counter in one worker cannot interleave with
    another's (the second would fail to upgrade its snapshot instead of waiting)."""
    path = tmp_path / "omnirouter.db"

    async def main() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.migrate()
        other = sqlite3.connect(path, isolation_level=None, timeout=0, check_same_thread=False)
        seen: list[str] = []

        def write(conn) -> None:  # type: ignore[no-untyped-def]
            conn.execute(text("SELECT 1"))  # only a read so far: the lock comes from BEGIN IMMEDIATE
            try:
                other.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                seen.append(str(exc))
            else:
                other.execute("ROLLBACK")

        try:
            await db.background(write, write=True)
            assert seen == ["database is locked"]
        finally:
            other.close()
            await db.close()

    asyncio.run(main())


def _workers(parent: int) -> list[int]:
    return sorted(pid for pid in children(parent) if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes())


def _cpus_of_threads(pid: int) -> set[frozenset[int]]:
    """The affinity of each of the process's threads (one entry when they all agree)."""
    return {frozenset(os.sched_getaffinity(int(tid))) for tid in os.listdir(f"/proc/{pid}/task")}


def _pinned(parent: int, count: int) -> dict[int, int]:
    """worker pid -> its one CPU, once `count` workers each keep to one (they pin themselves at start)."""
    deadline = time.monotonic() + 30
    while True:
        pinned = {}
        for pid in _workers(parent):
            try:
                cpus = _cpus_of_threads(pid)
            except OSError:  # ended meanwhile
                continue
            if len(cpus) == 1 and len(only := next(iter(cpus))) == 1:
                pinned[pid] = next(iter(only))
        if len(pinned) == count or time.monotonic() > deadline:
            return pinned
        time.sleep(0.05)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2, reason="Linux, two CPUs or more"
)
def test_pinned_workers_keep_to_a_cpu_each_and_a_restarted_one_takes_the_free_cpu(serve):
    s = serve("--sandbox", "--workers", "2", "--pin-workers")
    try:
        allowed = os.sched_getaffinity(0)
        pinned = _pinned(s.proc.pid, 2)
        assert len(pinned) == 2 and len(set(pinned.values())) == 2 and set(pinned.values()) <= allowed, pinned
        # Every thread: the event loop, the database writer, uvicorn's health check.
        for pid in pinned:
            assert _cpus_of_threads(pid) == {frozenset({pinned[pid]})}
        # uvicorn replaces a worker that died; the new one takes the CPU the dead one left.
        gone = min(pinned)
        os.kill(gone, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while (after := _pinned(s.proc.pid, 2)).keys() == pinned.keys() or len(after) < 2:
            assert time.monotonic() < deadline, after
            time.sleep(0.05)
        assert sorted(after.values()) == sorted(pinned.values()), (pinned, after)
        assert httpx.get(s.api + "/models", timeout=10).status_code == 200
    finally:
        s.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_are_not_pinned_unless_asked(serve):
    s = serve("--sandbox", "--workers", "2")
    try:
        allowed = frozenset(os.sched_getaffinity(s.proc.pid))
        workers = _workers(s.proc.pid)
        assert len(workers) == 2
        for pid in workers:  # (the SQLite writer thread keeps to its loop's CPU of the moment: not this)
            assert frozenset(os.sched_getaffinity(pid)) == allowed
    finally:
        s.stop()
