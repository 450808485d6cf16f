"""Where file contents live: a directory on this machine (`LocalStore`), or an S3-compatible bucket
(`files/s3.py`). Both take a finished spool file, so a reader never sees part of one: the local store
renames it into place (atomic on one file system), S3 makes an object visible only once it is whole.

The metadata (who owns a file, its name and type) is in the database (files/records.py); a store knows
contents by file id alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

CHUNK = 256 * 1024


class Missing(Exception):
    """The store has no content for this id."""


class Store(Protocol):
    kind: str  # "local" or "s3"

    async def put(self, file_id: str, spool: Path, size: int, sha256: str, mime: str) -> None:
        """Take the finished spool as the file's content (the spool is gone afterwards)."""

    async def read(self, file_id: str) -> bytes:
        """The whole content (to inline into a request); Missing if there is none."""

    def stream(self, file_id: str) -> AsyncIterator[bytes]:
        """The content in chunks; Missing (on first iteration) if there is none."""

    async def delete(self, file_id: str) -> None:
        """Remove the content; no error if there was none."""


class Spools:
    """Temporary files in the files directory's `tmp/`, on the same file system as the local store's
    objects so that keeping one is a rename."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "tmp"

    def new(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        return self.dir / f"{secrets.token_hex(12)}.part"


class LocalStore:
    kind = "local"

    def __init__(self, root: Path) -> None:
        self.objects = root / "objects"

    def path(self, file_id: str) -> Path:
        if "/" in file_id or "\\" in file_id or file_id.startswith("."):
            raise Missing(file_id)  # ids are checked before they get here; never a path out of the store
        return self.objects / file_id

    async def put(self, file_id: str, spool: Path, size: int, sha256: str, mime: str) -> None:
        self.objects.mkdir(parents=True, exist_ok=True)
        os.replace(spool, self.path(file_id))

    async def read(self, file_id: str) -> bytes:
        try:
            return await asyncio.to_thread(self.path(file_id).read_bytes)
        except FileNotFoundError:
            raise Missing(file_id) from None

    async def stream(self, file_id: str) -> AsyncIterator[bytes]:
        try:
            f = open(self.path(file_id), "rb")  # noqa: SIM115 (closed below, across awaits)
        except FileNotFoundError:
            raise Missing(file_id) from None
        try:
            while chunk := await asyncio.to_thread(f.read, CHUNK):
                yield chunk
        finally:
            f.close()

    async def delete(self, file_id: str) -> None:
        with contextlib.suppress(FileNotFoundError, Missing):
            self.path(file_id).unlink()
