"""The files of a running server: its store (local or S3, from settings), and uploading one.

An upload streams into a spool (files/upload.py), is checked (not empty, a type the bytes show and the
client does not contradict: files/sniff.py), is put whole into the store, and only then gets its row.
Any failure on the way leaves neither content nor row: the spool is removed, and content already put
is deleted again if the row cannot be written.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.types import Receive

from omnirouter.errors import GatewayError
from omnirouter.files import records
from omnirouter.files.records import FileRecord
from omnirouter.files.s3 import S3Store
from omnirouter.files.sniff import contradicts
from omnirouter.files.stores import LocalStore, Spools, Store
from omnirouter.files.upload import receive_upload
from omnirouter.governance.keys import KeyRecord

ACCEPTED = (
    "PDF; PNG, JPEG, GIF or WebP images; DOCX, XLSX or PPTX documents; MP3, WAV, FLAC or OGG audio; "
    "UTF-8 text (JSON, NDJSON, CSV, Markdown, plain)"
)
# OpenAI's purposes (the SDK requires one); the file is stored the same whatever it says.
PURPOSES = frozenset(
    {"assistants", "batch", "fine-tune", "vision", "user_data", "evals", "assistants_output", "batch_output",
     "fine-tune-results"}
)  # fmt: skip
DEFAULT_PURPOSE = "user_data"


class Files:
    def __init__(self, settings: Any, env: Mapping[str, str] = os.environ) -> None:
        root = Path(settings.files_dir) if settings.files_dir else Path(settings.data_dir) / "files"
        self.spools = Spools(root)
        self.limit: int = settings.files_max_bytes
        self.store: Store
        if settings.files_s3_url and settings.files_s3_bucket:
            access, secret = env.get(settings.files_s3_access_key_env), env.get(settings.files_s3_secret_key_env)
            if not access or not secret:
                raise ValueError(
                    f"files_s3_url is set but {settings.files_s3_access_key_env} or "
                    f"{settings.files_s3_secret_key_env} is empty: the bucket's keys are read from them"
                )
            self.store = S3Store(
                settings.files_s3_url, settings.files_s3_bucket, settings.files_s3_region, access, secret
            )
        else:
            self.store = LocalStore(root)


STALE_SPOOL = 3600.0  # seconds: a spool this old belongs to no upload still running (one died with its worker)


def sweep_spools(files: Files, now: float | None = None) -> int:
    """Remove spools that uploads interrupted by a crash left behind; the number removed."""
    now = time.time() if now is None else now
    removed = 0
    for spool in files.spools.dir.glob("*.part") if files.spools.dir.exists() else ():
        with contextlib.suppress(FileNotFoundError):
            if now - spool.stat().st_mtime > STALE_SPOOL:
                spool.unlink()
                removed += 1
    return removed


async def sweep_deleted_keys(st: Any) -> int:
    """Delete the files of deleted keys (rows, then contents); the number deleted. Each worker runs it
    at its start: a file another worker deleted first is skipped."""
    files, removed = files_of(st), 0
    while batch := await records.of_deleted_keys(st.db.engine):
        for file_id, key_hash in batch:
            if await records.delete_file(st.db.engine, file_id, key_hash):
                await files.store.delete(file_id)
                removed += 1
    return removed


def files_of(st: Any) -> Files:
    """The server's Files, made on first use (files are configured by settings alone)."""
    service = getattr(st, "files_service", None)
    if service is None:
        service = st.files_service = Files(st.settings)
    return service


def _clean_name(name: str | None) -> str:
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = "".join(c for c in base if c.isprintable())
    return (base or "file")[:255]


async def upload(st: Any, key: KeyRecord, receive: Receive, headers: Mapping[str, str]) -> tuple[FileRecord, bool]:
    """The stored file, and whether the client sent OpenAI's `purpose` field (it asks for OpenAI's shape)."""
    files = files_of(st)
    spool = files.spools.new()
    try:
        up = await receive_upload(receive, headers, spool, files.limit)
        if up.size == 0:
            raise GatewayError(400, "The file is empty")
        mime = await asyncio.to_thread(up.sniffer.kind, spool)  # an Office file's directory is read from disk
        if mime is None:
            raise GatewayError(400, f"Unsupported file type: the content is not one of {ACCEPTED}")
        if contradicts(up.declared_type, mime):
            raise GatewayError(
                400, f"The file was sent as {up.declared_type} but its content is {mime}",
                {"declared_type": up.declared_type, "detected_type": mime},
            )  # fmt: skip
        purpose = up.fields.get("purpose") or DEFAULT_PURPOSE
        if purpose not in PURPOSES:
            raise GatewayError(400, f"purpose must be one of {', '.join(sorted(PURPOSES))}")
        record = FileRecord(
            id=records.new_id(),
            key_hash=key.hash,
            workspace_id=key.workspace_id,
            filename=_clean_name(up.filename),
            mime_type=mime,
            size_bytes=up.size,
            sha256=up.sha256,
            purpose=purpose,
            store=files.store.kind,
            created_at=datetime.now(UTC),
        )
        await files.store.put(record.id, spool, up.size, up.sha256, mime)
        try:
            await records.insert_file(st.db.engine, record)
        except BaseException:
            await asyncio.shield(files.store.delete(record.id))
            raise
        return record, "purpose" in up.fields
    finally:
        spool.unlink(missing_ok=True)


async def remove(st: Any, key: KeyRecord, file_id: str) -> bool:
    """The row first: once it is gone the file is unlisted and unusable, even if deleting the content
    then fails (it would be an orphan, never a row without content)."""
    if not await records.delete_file(st.db.engine, file_id, key.hash):
        return False
    await files_of(st).store.delete(file_id)
    return True
