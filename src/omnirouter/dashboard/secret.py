"""The key that signs dashboard sessions, the same on every worker and instance.

OMNIROUTER_DASHBOARD_SECRET when set; otherwise a random secret made once and kept in the database
(table dashboard_secret), which every instance of a deployment shares. Read once per worker.
"""

from __future__ import annotations

import hashlib
import secrets
import weakref
from datetime import UTC, datetime

from sqlalchemy import insert, select

from omnirouter.settings import Settings
from omnirouter.store.db import Database
from omnirouter.store.tables import dashboard_secret

_cache: weakref.WeakKeyDictionary[Database, bytes] = weakref.WeakKeyDictionary()


async def session_secret(settings: Settings, db: Database) -> bytes:
    if settings.dashboard_secret is not None:
        # Hashed, so that any length of setting gives a full-strength HMAC key.
        return hashlib.sha256(b"omnirouter dashboard:" + settings.dashboard_secret.get_secret_value().encode()).digest()
    found = _cache.get(db)
    if found is None:
        found = _cache[db] = await _stored(db)
    return found


async def _stored(db: Database) -> bytes:
    async with db.engine.begin() as conn:
        await db.setup_lock(conn)  # instances starting together make one secret, not one each
        value = (await conn.execute(select(dashboard_secret.c.secret).where(dashboard_secret.c.id == 1))).scalar()
        if value is None:
            value = secrets.token_hex(32)
            await conn.execute(insert(dashboard_secret).values(id=1, secret=value, created_at=datetime.now(UTC)))
    return bytes.fromhex(value)
