"""File metadata in the database (the `files` table): one row per stored file, written after its content
is whole in the store, read by id with its owner, listed in id order (ids sort by creation time)."""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirouter.store.tables import api_keys, files

PREFIX = "or_file_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # ASCII order: sorts as numbers
_rng = random.Random(os.urandom(32))


def new_id(now_ms: int | None = None) -> str:
    """`or_file_` + the creation time in ms (10 base62 characters, so ids sort by time) + 14 random ones."""
    n = int(time.time() * 1000) if now_ms is None else now_ms
    stamp = ""
    for _ in range(10):
        n, digit = divmod(n, 62)
        stamp = _ALPHABET[digit] + stamp
    return PREFIX + stamp + "".join(_rng.choice(_ALPHABET) for _ in range(14))


def well_formed(file_id: str) -> bool:
    return (
        len(file_id) == len(PREFIX) + 24
        and file_id.startswith(PREFIX)
        and all(c in _ALPHABET for c in file_id[len(PREFIX) :])
    )


@dataclass(frozen=True)
class FileRecord:
    id: str
    key_hash: str
    workspace_id: str | None
    filename: str
    mime_type: str
    size_bytes: int
    sha256: str
    purpose: str
    store: str
    created_at: datetime


def _record(row: Any) -> FileRecord:
    data = dict(row._mapping)
    created = data["created_at"]
    if created.tzinfo is None:  # SQLite gives back naive datetimes; they were written in UTC
        data["created_at"] = created.replace(tzinfo=UTC)
    return FileRecord(**data)


async def insert_file(engine: AsyncEngine, record: FileRecord) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(files).values(**record.__dict__))


async def get_file(engine: AsyncEngine, file_id: str, key_hash: str) -> FileRecord | None:
    """The file if this key owns it: another key's file is as absent as one that never existed."""
    if not well_formed(file_id):
        return None
    async with engine.connect() as conn:
        row = (await conn.execute(select(files).where(files.c.id == file_id, files.c.key_hash == key_hash))).first()
    return _record(row) if row is not None else None


async def list_files(
    engine: AsyncEngine, key_hash: str, after: str | None, limit: int, purpose: str | None = None
) -> list[FileRecord]:
    """Up to `limit` of the key's files after `after` (of one purpose), oldest first."""
    query = select(files).where(files.c.key_hash == key_hash)
    if after:
        query = query.where(files.c.id > after)
    if purpose:
        query = query.where(files.c.purpose == purpose)
    async with engine.connect() as conn:
        rows = (await conn.execute(query.order_by(files.c.id).limit(limit))).all()
    return [_record(r) for r in rows]


async def delete_file(engine: AsyncEngine, file_id: str, key_hash: str) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(delete(files).where(files.c.id == file_id, files.c.key_hash == key_hash))
    return result.rowcount > 0


async def of_deleted_keys(engine: AsyncEngine, limit: int = 1000) -> list[tuple[str, str]]:
    """(id, key hash) of files whose key was deleted: nobody can reach them any more."""
    live = select(api_keys.c.hash).where(api_keys.c.deleted.is_(False))
    query = select(files.c.id, files.c.key_hash).where(files.c.key_hash.not_in(live)).limit(limit)
    async with engine.connect() as conn:
        return [(r.id, r.key_hash) for r in (await conn.execute(query)).all()]


async def get_files(engine: AsyncEngine, ids: set[str], key_hash: str) -> dict[str, FileRecord]:
    """Those of `ids` this key owns, by id (one query for every file a request names)."""
    wanted = [i for i in ids if well_formed(i)]
    if not wanted:
        return {}
    async with engine.connect() as conn:
        rows = (await conn.execute(select(files).where(files.c.id.in_(wanted), files.c.key_hash == key_hash))).all()
    return {r.id: _record(r) for r in rows}
