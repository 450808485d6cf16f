"""generation_daily (the generations' sums by UTC day, key, workspace, model and provider, which GET
/activity reads), filled from the generations already recorded

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-11
"""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

from omnirouter.store.types import Money

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

GRAIN = ("day", "key_hash", "workspace_id", "model", "provider_slug", "provider_name")
COUNTS = ("requests", "prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens")


def upgrade() -> None:
    daily = op.create_table(
        "generation_daily",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("provider_slug", sa.String(length=255), nullable=False),
        sa.Column("provider_name", sa.String(length=255), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTS),
        sa.Column("usage", Money(), nullable=False),
        sa.Column("byok_usage", Money(), nullable=False),
        sa.UniqueConstraint(*GRAIN, name="uq_generation_daily_grain"),
    )
    _backfill(op.get_bind(), daily)


def downgrade() -> None:
    op.drop_table("generation_daily")


# The generations as this revision knows them (the migration must not follow later changes to tables.py).
_g = sa.table(
    "generations",
    *(
        sa.column(name)
        for name in (
            "key_hash",
            "workspace_id",
            "model",
            "provider_slug",
            "provider_name",
            "tokens_prompt",
            "tokens_completion",
            "native_tokens_reasoning",
            "native_tokens_cached",
            "is_byok",
        )
    ),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("total_cost", Money()),
    sa.column("upstream_inference_cost", Money()),
)


def _backfill(conn: sa.Connection, daily: sa.Table) -> None:
    """Sum the generations recorded so far: in the database on PostgreSQL (exact NUMERIC sums), in
    Python on SQLite (whose money is decimal strings its own SUM would turn into floats)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(_PG_BACKFILL))
        return
    sums: dict[tuple[Any, ...], list[Any]] = {}
    for g in conn.execution_options(yield_per=5000).execute(sa.select(_g)).mappings():
        at = g["created_at"]
        at = at.astimezone(UTC) if at.tzinfo is not None else at  # naive is UTC already (SQLite)
        key = (at.strftime("%Y-%m-%d"), g["key_hash"], g["workspace_id"] or "", g["model"])
        key += (g["provider_slug"] or "", g["provider_name"] or "")
        row = sums.get(key)
        if row is None:
            row = sums[key] = [0] * 5 + [Decimal(0), Decimal(0)]
        row[0] += 1
        row[1] += g["tokens_prompt"] or 0
        row[2] += g["tokens_completion"] or 0
        row[3] += g["native_tokens_reasoning"] or 0
        row[4] += g["native_tokens_cached"] or 0
        row[5] += g["total_cost"] or 0
        if g["is_byok"]:
            row[6] += g["upstream_inference_cost"] or 0
    records = [
        dict(zip(GRAIN, key, strict=True)) | dict(zip(COUNTS, row[:5], strict=True))
        | {"usage": row[5], "byok_usage": row[6]}
        for key, row in sums.items()
    ]  # fmt: skip
    for i in range(0, len(records), 5000):
        conn.execute(sa.insert(daily), records[i : i + 5000])


_PG_BACKFILL = """
INSERT INTO generation_daily (day, key_hash, workspace_id, model, provider_slug, provider_name,
    requests, prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens, usage, byok_usage)
SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS d, key_hash, coalesce(workspace_id, '') AS ws,
    model, coalesce(provider_slug, '') AS ps, coalesce(provider_name, '') AS pn,
    count(*),
    coalesce(sum(tokens_prompt), 0), coalesce(sum(tokens_completion), 0),
    coalesce(sum(native_tokens_reasoning), 0), coalesce(sum(native_tokens_cached), 0),
    coalesce(sum(total_cost), 0),
    coalesce(sum(upstream_inference_cost) FILTER (WHERE is_byok), 0)
FROM generations
GROUP BY d, key_hash, ws, model, ps, pn
"""
