"""What a worker told its clients, on local disk until the database has it.

Generations and their spend reach the database in batches (store/writer.py), so a worker killed
with SIGKILL would lose the last `flush_interval` of them although their clients were told a cost.
Each worker therefore appends every recorded generation, with the spend it caused, to a journal of
its own in `data_dir` before the response's last byte is sent: one msgpack record and one write(2)
each, no fsync. A write that returned is in the kernel's page cache and survives the process being
killed; a power loss can still lose what the kernel had not written back yet (up to
vm.dirty_expire_centisecs, 30 s by default).

The journal is a series of segments, `journal-<pid>-<n>.log`. At each flush the writer seals the
current segment (a new one takes the next records) and, once the batch is committed, deletes the
segments it covered. A worker holds an exclusive flock on its segments while it lives, so whoever
can lock a segment knows its writer is gone: at start, before serving, every such segment is
replayed into the database, skipping generations already there (a batch committed just before the
crash), and deleted.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import Table, insert, select
from sqlalchemy.engine import Connection

from omnirouter.accounting.ledger import Counts, Spend, add_spend
from omnirouter.store import repo
from omnirouter.store.db import Database
from omnirouter.store.derived import Derived
from omnirouter.store.derived import write as write_derived
from omnirouter.store.outage import describe, unreachable
from omnirouter.store.tables import generation_content, generations

log = logging.getLogger("omnirouter.store")

HEADER = struct.Struct("<I")  # each record: its payload's length, then the msgpack payload
SUFFIX = ".log"
SEAL_ANYWAY_BYTES = 1 << 20  # while flushes fail, keep one segment growing up to this size
ID_CHUNK = 500  # ids per IN (...) when looking for what the database already has

# One journaled generation: its row, its content (with log_prompts) and the spend it caused.
Record = tuple[dict[str, Any], dict[str, Any] | None, Spend | None]


@dataclass
class Segment:
    path: Path
    fd: int
    size: int = 0


class Journal:
    """This worker's segments. Only the event loop's thread touches it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.pid = os.getpid()
        self._next = 0
        self.sealed: list[Segment] = []
        self.current = self._open()
        self._buffer = bytearray(HEADER.size)
        self._encode_into = msgspec.msgpack.Encoder().encode_into
        self._failed = False

    def _open(self) -> Segment:
        """A new segment, locked before its name can be seen: a replayer must never take a live one."""
        while True:
            self._next += 1
            name = f"journal-{self.pid}-{self._next}"
            tmp = self.directory / (name + ".new")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
            except FileExistsError:  # a pid of an earlier process, reused
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path = self.directory / (name + SUFFIX)
            if path.exists():
                os.close(fd)
                tmp.unlink()
                continue
            os.rename(tmp, path)
            return Segment(path, fd)

    # -- request path
    def append(self, row: dict[str, Any], content: dict[str, Any] | None, spend: Spend | None) -> None:
        buf = self._buffer
        self._encode_into((row, content, spend), buf, HEADER.size)
        HEADER.pack_into(buf, 0, len(buf) - HEADER.size)
        seg = self.current
        try:
            written = os.write(seg.fd, buf)
            if written != len(buf):  # a torn record would hide every later one from the replay
                os.ftruncate(seg.fd, seg.size)
                raise OSError(errno.ENOSPC, f"short write ({written} of {len(buf)} bytes)")
        except OSError as exc:  # a full disk must not fail the response: the row is still buffered
            if not self._failed:
                self._failed = True
                log.error("cannot write the journal %s (%s): a crash now would lose recent generations",
                          seg.path, exc.strerror)  # fmt: skip
            return
        seg.size += written

    # -- the writer's side
    def seal(self, *, last_flush_failed: bool) -> list[Segment]:
        """The segments whose every record is in the batch being taken now (or put back from an
        earlier one). The current segment is sealed unless empty, or while flushes fail and it is
        still small (an outage would otherwise leave a file per flush)."""
        cur = self.current
        if cur.size and (not last_flush_failed or cur.size >= SEAL_ANYWAY_BYTES):
            self.sealed.append(cur)
            self.current = self._open()
        return list(self.sealed)

    def committed(self, segments: list[Segment]) -> None:
        """Their records are in the database: delete them (unlink first, then let go of the lock)."""
        for seg in segments:
            with contextlib.suppress(FileNotFoundError):
                seg.path.unlink()
            os.close(seg.fd)
            self.sealed.remove(seg)

    def close(self, *, everything_committed: bool) -> None:
        for seg in [*self.sealed, self.current]:
            if everything_committed or seg.size == 0:
                with contextlib.suppress(FileNotFoundError):
                    seg.path.unlink()
            os.close(seg.fd)
        self.sealed = []


# -- replay
@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold `path`'s lock, or raise BlockingIOError if a live process holds it."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        os.close(fd)


@dataclass
class Replayed:
    segments: int = 0
    generations: int = 0
    skipped: int = 0  # already in the database
    cost: Decimal = Decimal(0)


def read_records(data: bytes) -> list[Record]:
    """Every whole record; a torn last one (the process died inside its write) was never answered."""
    out = []
    decode = msgspec.msgpack.Decoder().decode
    at, end = 0, len(data)
    while at + HEADER.size <= end:
        (size,) = HEADER.unpack_from(data, at)
        start = at + HEADER.size
        if start + size > end:
            break
        row, content, spend = decode(data[start : start + size])
        out.append((_typed(row), content, Spend.decode(spend) if spend is not None else None))
        at = start + size
    return out


def _restorers(table: Table) -> dict[str, Any]:
    """msgpack keeps no Decimal, and datetimes only when they have a zone: how to restore each column."""
    out: dict[str, Any] = {}
    for column in table.columns:
        try:
            kind = column.type.python_type
        except NotImplementedError:
            continue
        if kind is Decimal:
            out[column.name] = Decimal
        elif kind is datetime:
            out[column.name] = datetime.fromisoformat
    return out


GENERATION_TYPES = _restorers(generations)


def _typed(row: dict[str, Any]) -> dict[str, Any]:
    for name, restore in GENERATION_TYPES.items():
        if isinstance(value := row.get(name), str):
            row[name] = restore(value)
    return row


async def replay(db: Database, directory: Path, derived: Sequence[Derived] = ()) -> Replayed:
    """Write into the database what the journals of stopped processes hold and it lacks, then delete
    them. A segment that another live process holds locked is left alone."""
    done = Replayed()
    if not directory.is_dir():
        return done
    for path in directory.glob("journal-*.new"):  # a segment its process died before naming: empty
        with contextlib.suppress(OSError), _locked(path):
            path.unlink()
    for path in sorted(directory.glob("journal-*" + SUFFIX)):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # replayed and deleted by another process meanwhile
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    continue  # its writer is alive
                raise
            try:  # the name may have been replayed and unlinked between our open and our lock
                if os.stat(path).st_ino != os.fstat(fd).st_ino:
                    continue
            except FileNotFoundError:
                continue
            try:
                with open(fd, "rb", closefd=False) as f:
                    records = read_records(f.read())
                if records:
                    written, skipped, cost = await db.background(_apply, records, derived, write=True)
                    done.generations += written
                    done.skipped += skipped
                    done.cost += cost
            except Exception as exc:
                if unreachable(exc):  # no database: the start fails, and the next one replays it
                    raise
                # A segment that cannot be read or stored must not stop every later start: keep it aside.
                aside = path.with_suffix(".failed")
                os.rename(path, aside)
                log.error("cannot replay the journal segment %s (%s); moved to %s", path, describe(exc), aside.name)
                continue
            path.unlink()
            done.segments += 1
        finally:
            os.close(fd)
    if done.generations or done.skipped:
        log.warning(
            "replayed the journal of a stopped process: %d generations (%s USD) written, %d already stored",
            done.generations,
            format(done.cost.normalize(), "f"),
            done.skipped,
        )
    return done


def _apply(conn: Connection, records: list[Record], derived: Sequence[Derived]) -> tuple[int, int, Decimal]:
    """One transaction: each journaled generation the database lacks, with its content and spend, and
    what is derived from it."""
    ids = [row["id"] for row, _, _ in records]
    stored: set[str] = set()
    for i in range(0, len(ids), ID_CHUNK):
        chunk = ids[i : i + ID_CHUNK]
        stored.update(conn.execute(select(generations.c.id).where(generations.c.id.in_(chunk))).scalars())
    rows: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    deltas: Counts = {}
    cost, seen = Decimal(0), set()
    for row, content, spend in records:
        if row["id"] in stored or row["id"] in seen:
            continue
        seen.add(row["id"])
        rows.append(row)
        if content is not None:
            contents.append(content)
        if spend is not None:
            add_spend(deltas, spend)
            cost += spend.cost
    if rows:
        conn.execute(insert(generations), rows)
    if contents:
        conn.execute(insert(generation_content), contents)
    if rows:
        write_derived(derived, conn, rows, {c["id"]: c for c in contents})
    repo.add_counts(conn, deltas)
    return len(rows), len(records) - len(rows), cost
