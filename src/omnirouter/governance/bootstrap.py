"""The first management key: from OMNIROUTER_MANAGEMENT_KEY, or minted once on first start."""

from __future__ import annotations

from datetime import UTC, datetime

from omnirouter.governance.keys import KeyRecord, is_well_formed, key_hash, mask, new_key
from omnirouter.store import repo
from omnirouter.store.db import Database


async def ensure_management_key(db: Database, configured: str | None) -> str | None:
    """Make sure a management key exists. Returns a newly minted key (to show once), else None."""
    if configured is not None and not is_well_formed(configured):
        raise ValueError("OMNIROUTER_MANAGEMENT_KEY must be 'sk-or-v1-' followed by 64 lowercase hex characters")
    async with db.change() as conn:
        await db.setup_lock(conn)  # instances starting together: one inserts (or mints), the others see it
        if configured is not None:
            if await repo.get_key(conn, key_hash(configured)) is None:
                await repo.insert_key(conn, _record(configured, "Bootstrap management key (environment)"))
            return None
        if await repo.has_management_key(conn):
            return None
        minted = new_key()
        await repo.insert_key(conn, _record(minted, "Bootstrap management key"))
        return minted


def _record(key: str, name: str) -> KeyRecord:
    return KeyRecord(hash=key_hash(key), name=name, label=mask(key), created_at=datetime.now(UTC), is_management=True)
