"""Migration 0005: the default workspace appears and existing keys move into it; a key created with a
workspace id of its own (accepted unchecked before) finds that workspace created under the same id."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from omnirouter.governance.workspaces import DEFAULT_WORKSPACE_ID
from omnirouter.store.db import MIGRATIONS
from tests.gateway import FreshDatabase


def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    async def run() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:

                def go(sync_conn: sa.Connection) -> None:
                    cfg = Config()
                    cfg.set_main_option("script_location", str(MIGRATIONS))
                    cfg.attributes["connection"] = sync_conn
                    (command.downgrade if down else command.upgrade)(cfg, revision)

                await conn.run_sync(go)
        finally:
            await engine.dispose()

    asyncio.run(run())


def _query(url: str, sql: str, **params: object) -> list[tuple]:
    from sqlalchemy.ext.asyncio import create_async_engine

    async def run() -> list[tuple]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(sa.text(sql), params)
                return [tuple(r) for r in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _key(url: str, hash_: str, workspace_id: str | None) -> None:
    _query(
        url,
        "INSERT INTO api_keys (hash, name, label, is_management, disabled, include_byok_in_limit, workspace_id,"
        " created_at, deleted) VALUES (:h, 'k', 'sk-or-v1-x', false, false, false, :w, :t, false)",
        h=hash_,
        w=workspace_id,
        t=datetime.now(UTC),
    )


def test_existing_keys_move_into_the_default_workspace_and_back(tmp_path: Path):
    database = FreshDatabase()
    url = database.url or f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    try:
        _migrate(url, "0004")
        _key(url, "a" * 64, None)
        _key(url, "b" * 64, "default")
        _key(url, "c" * 64, "team-x")
        _key(url, "d" * 64, "Team X!")
        _migrate(url, "0005")

        keys = dict(_query(url, "SELECT hash, workspace_id FROM api_keys"))
        assert keys == {"a" * 64: DEFAULT_WORKSPACE_ID, "b" * 64: DEFAULT_WORKSPACE_ID, "c" * 64: "team-x",
                        "d" * 64: "Team X!"}  # fmt: skip
        spaces = {r[0]: r[1] for r in _query(url, "SELECT id, slug FROM workspaces")}
        assert spaces == {DEFAULT_WORKSPACE_ID: "default", "team-x": "team-x", "Team X!": "team-x-2"}

        _migrate(url, "0004", down=True)
        keys = dict(_query(url, "SELECT hash, workspace_id FROM api_keys"))
        assert keys["a" * 64] is None and keys["c" * 64] == "team-x"
    finally:
        database.drop()
