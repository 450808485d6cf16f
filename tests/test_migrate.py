"""`omnirouter migrate`, and instances that all migrate at start: on one fresh database, several at
once take turns under the migration lock and all succeed with one schema."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from omnirouter.governance.keys import new_key
from omnirouter.store.db import MIGRATIONS
from omnirouter.store.tables import metadata
from tests.gateway import FreshDatabase
from tests.served import Served

AT_ONCE = 4


def _head() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def _env(tmp: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIROUTER_")}
    return {**env, "OMNIROUTER_DATA_DIR": str(tmp / "data"), "OMNIROUTER_DATABASE_URL": url}


def _schema(url: str) -> tuple[list[str], set[str]]:
    """The revisions recorded in alembic_version, and the tables the database holds."""
    if url.startswith("postgresql"):
        import asyncio

        import asyncpg

        async def read() -> tuple[list[str], set[str]]:
            conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
            try:
                versions = [r[0] for r in await conn.fetch("SELECT version_num FROM alembic_version")]
                tables = {r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
                return versions, tables
            finally:
                await conn.close()

        return asyncio.run(read())
    engine = sa.create_engine(url.replace("+aiosqlite", ""))
    try:
        with engine.connect() as conn:
            versions = [r[0] for r in conn.execute(sa.text("SELECT version_num FROM alembic_version"))]
            tables = set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()
    return versions, tables


def _fresh(tmp_path: Path) -> tuple[FreshDatabase, str]:
    database = FreshDatabase()
    return database, database.url or f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"


def test_migrators_started_together_all_succeed_with_one_schema(tmp_path: Path):
    database, url = _fresh(tmp_path)
    try:
        command = [sys.executable, "-m", "omnirouter", "migrate"]
        procs = [
            subprocess.Popen(
                command, env=_env(tmp_path / f"m{i}", url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for i in range(AT_ONCE)
        ]
        results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
        head = _head()
        for rc, out, err in results:
            assert rc == 0, err
            assert out.strip().endswith(f"schema at revision {head}."), out
        versions, tables = _schema(url)
        assert versions == [head]
        assert {t.name for t in metadata.sorted_tables} <= tables

        again = subprocess.run(command, env=_env(tmp_path / "again", url), capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and again.stdout.strip().endswith(f"schema at revision {head}.")
    finally:
        database.drop()


def test_instances_started_together_on_a_fresh_database_all_serve(tmp_path: Path):
    database, url = _fresh(tmp_path)
    shared = FreshDatabase(create=False)  # the instances share `database`; the test drops it
    management = new_key()
    env = {"OMNIROUTER_DATABASE_URL": url, "OMNIROUTER_MANAGEMENT_KEY": management}
    try:
        with ThreadPoolExecutor(3) as pool:
            started = list(
                pool.map(lambda i: Served(tmp_path / f"i{i}", "--sandbox", database=shared, **env), range(3))
            )
        try:
            for s in started:
                assert httpx.get(s.api.removesuffix("/api/v1") + "/health/ready", timeout=10).status_code == 200
                r = httpx.post(s.api + "/keys", headers={"Authorization": f"Bearer {management}"},
                               json={"name": "after a shared start"}, timeout=10)  # fmt: skip
                assert r.status_code == 201, r.text
            versions, _ = _schema(url)
            assert versions == [_head()]
        finally:
            outputs = [s.stop(drop=False) for s in started]
        assert not any("Traceback" in out for out in outputs), outputs
    finally:
        database.drop()
