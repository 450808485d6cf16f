"""Off the request path: batched writes of generations and spend, and refreshes of shared state.

Requests only append to in-memory buffers. One task per worker flushes them every `flush_interval`
in a single transaction (a generation and the spend it caused land together or not at all), and
every `sync_interval` re-reads what other workers changed: counters, keys, credits. Shutdown
flushes everything, so a graceful restart loses no generation; a kill -9 loses none either, as each
is in the worker's journal (store/journal.py) before its client hears the cost. While the database
is unreachable the buffers and the journal grow, and the outage is logged once (store/outage.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from omnirouter.accounting.ledger import Counts, Ledger, Spend
from omnirouter.accounting.periods import window_starts
from omnirouter.cluster.budgets import Bucket, Leases
from omnirouter.governance import registry
from omnirouter.governance.keys import KeyRecord, KeyStore
from omnirouter.governance.registry import Governance
from omnirouter.store import repo
from omnirouter.store.bulk import BulkInsert
from omnirouter.store.db import Database
from omnirouter.store.derived import Derived
from omnirouter.store.derived import write as write_derived
from omnirouter.store.journal import Journal, replay
from omnirouter.store.outage import describe, unreachable
from omnirouter.store.tables import generation_content, generations

log = logging.getLogger("omnirouter.store")

# Rows per executemany when the writer is a thread on the event loop's core (see store/bulk.py).
SLICE_ROWS = 16


class Recorder:
    def __init__(
        self,
        db: Database,
        ledger: Ledger,
        keys: KeyStore,
        *,
        flush_interval: float,
        sync_interval: float,
        journal_dir: Path | None = None,  # None: no journal (a kill -9 loses the unflushed batch)
        derived: Sequence[Derived] = (),  # what each batch also writes in its transaction (store/derived.py)
    ) -> None:
        self.db = db
        self.ledger = ledger
        self.keys = keys
        self.flush_interval = flush_interval
        self.sync_interval = sync_interval
        self.generations = BulkInsert(generations, db.write_dialect)
        self.generation_content = BulkInsert(generation_content, db.write_dialect)
        self.rows: list[tuple[Any, ...]] = []  # encoded for the driver as they are recorded
        self.contents: list[tuple[Any, ...]] = []
        # id -> row or content, so that /generation and /generation/content answer before the flush
        self.unflushed: dict[str, dict] = {}
        self.unflushed_content: dict[str, dict] = {}
        self.version = -1
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self._last_sync = 0.0
        self.journal_dir = journal_dir
        self.derived = derived
        self.journal: Journal | None = None
        self._flush_failed = False
        self.leases: Leases | None = None  # set by app.py: this worker's leases of shared budgets
        self.governance = Governance()  # workspaces, guardrails, BYOK keys, presets (governance/registry.py)
        # What each round's new generations are shown to (metrics, traces: observability/), with the
        # timestamps their requests kept, and how many rows wait to be written; None: nobody watches.
        self.watch: Callable[[list[tuple[dict, Any]], int], None] | None = None
        self.fresh: list[tuple[dict, Any]] = []

    # -- request path
    def record(self, row: dict, content: dict | None = None, spend: Spend | None = None, timing: Any = None) -> None:
        """Buffer a generation and journal it with the spend it caused (already in the ledger).
        `timing`: the request's timestamps, for the watcher (observability/metrics.py Timing)."""
        if self.watch is not None:
            self.fresh.append((row, timing))
        if self.journal is not None:
            self.journal.append(row, content, spend)
        self.rows.append(self.generations.encode(row))
        self.unflushed[row["id"]] = row
        if content is not None:
            self.contents.append(self.generation_content.encode(content))
            self.unflushed_content[row["id"]] = content

    # -- lifecycle
    async def start(self) -> None:
        if self.journal_dir is not None:  # before the first sync, which reads what the replay wrote
            await replay(self.db, self.journal_dir, self.derived)
            self.journal = Journal(self.journal_dir)
        await self.sync(force=True)
        self._task = asyncio.create_task(self._run(), name="omnirouter-recorder")

    async def close(self) -> None:
        if self._task:
            # Not in the middle of a write: the writer thread would commit it after the cancel, and
            # the final flush below would write its rows a second time.
            async with self._lock:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.flush(closing=True)  # and gives back every lease
        except Exception as exc:
            if self.journal is None or not unreachable(exc):
                raise
            # Stopping during an outage: what is left waits in the journal for the next start's replay.
            log.error("database unreachable at shutdown (%s): %d generations left in the journal %s",
                      describe(exc), len(self.rows), self.journal_dir)  # fmt: skip
        finally:
            if self.journal is not None:
                self.journal.close(everything_committed=not self.rows and not self._flush_failed)
                self.journal = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                pending = len(self.rows)
                await self.flush()
                # While the database is down, every round probes it: recovery is logged within a flush.
                if self.db.outage.down or time.monotonic() - self._last_sync >= self.sync_interval:
                    await self.sync()
                self.db.outage.recovered(pending)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep buffering (and journaling); the next round retries
                if unreachable(exc):
                    self.db.outage.failed(exc)  # logs once per outage
                else:
                    log.exception("background flush failed; will retry")

    async def flush(self, *, closing: bool = False) -> None:
        async with self._lock:
            if self.watch is not None:
                self._show()
            rows, contents = self.rows, self.contents
            self.rows, self.contents = [], []
            deltas = self.ledger.take_pending()
            used = self.keys.take_used()
            # The journal's segments up to here hold only records of this batch or of earlier ones.
            covered = self.journal.seal(last_flush_failed=self._flush_failed) if self.journal else []
            leases = self.leases if self.leases is not None and self.leases.held else None
            if not rows and not deltas and not used and leases is None:
                self.ledger.flushed()
                self._flush_failed = False
                if self.journal is not None:  # nothing unwritten: whatever it sealed is in the database
                    self.journal.committed(covered)
                return
            async with leases.lock if leases is not None else contextlib.nullcontext():
                await self._write(rows, contents, deltas, used, covered, leases, closing=closing)

    def _show(self) -> None:
        fresh, self.fresh = self.fresh, []
        try:
            self.watch(fresh, len(self.rows))  # type: ignore[misc]
        except Exception:  # metrics or traces must never stop the writes
            log.exception("observing a batch of generations failed")

    async def _write(
        self,
        rows: list[tuple[Any, ...]],
        contents: list[tuple[Any, ...]],
        deltas: Counts,
        used: dict[str, datetime],
        covered: list[Path],
        leases: Leases | None,
        *,
        closing: bool,
    ) -> None:
        # Leases of shared budgets: what this batch spent under them moves from the lease to the
        # bucket's spend, in this transaction when the database is their store (cluster/budgets.py).
        spent = leases.spend_of(deltas) if leases is not None else {}
        held = leases.after_flush(spent, closing=closing) if leases and leases.uses_database_in_flush() else None
        try:
            await self.db.background(self._write_batch, rows, contents, deltas, used, held, write=True)
        except BaseException:
            self.rows[:0], self.contents[:0] = rows, contents
            self.ledger.flush_failed(deltas)
            self.keys.used_failed()
            self._flush_failed = True
            raise
        self._flush_failed = False
        if self.journal is not None:
            self.journal.committed(covered)
        self.keys.used_written()
        # What this worker wrote joins its base; other workers' spend arrives with the next sync.
        self.ledger.flushed()
        at = self.generations.position("id")
        for row in rows:
            self.unflushed.pop(row[at], None)
            self.unflushed_content.pop(row[at], None)
        if leases is not None and held is None:  # Redis is their store: tell it, now that it is counted
            held = leases.after_flush(spent, closing=closing)
            floors = {b: row[0] for b in held.keys() | spent.keys() if (row := self.ledger.base.get(b))}
            await leases.report(spent, held, floors)

    def _write_batch(
        self,
        conn: Connection,
        rows: list[tuple[Any, ...]],
        contents: list[tuple[Any, ...]],
        deltas: Counts,
        used: dict[str, datetime] | None = None,
        held: dict[Bucket, Decimal] | None = None,
    ) -> None:
        """A generation and the spend it caused land together or not at all (and the leases the
        spend came out of, when the database holds them)."""
        slices = SLICE_ROWS if self.db.writes_in_thread else 0
        self.generations.write(conn, rows, slices_of=slices)
        self.generation_content.write(conn, contents, slices_of=slices)
        if self.derived and rows:
            at = self.generations.position("id")
            recorded = [self.unflushed[row[at]] for row in rows]
            logged = {row["id"]: c for row in recorded if (c := self.unflushed_content.get(row["id"])) is not None}
            write_derived(self.derived, conn, recorded, logged)
        repo.add_counts(conn, deltas)
        repo.mark_keys_used(conn, used or {})
        if held and self.leases is not None:
            self.leases.database.write_leases(conn, held)

    async def sync(self, *, force: bool = False) -> None:
        """Re-read counters, and keys and credits when another worker changed them."""
        self._last_sync = time.monotonic()
        # Under the lock no flush is under way: the database holds everything this worker flushed
        # and nothing of what is pending, which stays on top of the fresh base.
        async with self._lock:
            self.keys.reading()  # a key this worker puts or drops meanwhile is laid over what is read
            version, keys, credits, sections, counts = await self.db.background(
                _read_shared, None if force else self.version, window_starts(datetime.now(UTC))
            )
            if keys is not None:
                self.keys.replace_all(keys)
                self.governance.replace_all(sections)
                self.ledger.credits = credits
                self.version = version
            self.ledger.base = counts
        if self.leases is not None:
            await self.leases.reconcile()


def _read_shared(
    conn: Connection, known_version: int | None, starts: dict[str, str]
) -> tuple[int, list[KeyRecord] | None, Decimal | None, dict[str, Any], Counts]:
    """The shared state's version; keys, credits and governance too when it is not `known_version`;
    counters."""
    version = repo.read_version(conn)
    keys = credits = None
    sections: dict[str, Any] = {}
    if version != known_version:
        keys, credits, sections = repo.load_keys(conn), repo.total_credits(conn), registry.load_all(conn)
    return version, keys, credits, sections, repo.read_counts(conn, starts)
