"""generation_rollups (hourly sums of generations, for /activity and /analytics/query), filled from the
generations already recorded; generation_feedback; an index on generations.created_at

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

from omnirouter.store.types import Money

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

GRAIN = ("hour", "key_hash", "workspace_id", "model", "provider_slug", "provider_name", "api_type", "app")
COUNTS = (
    "requests",
    "errors",
    "cancelled",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "latency_ms",
    "latency_count",
    "generation_time_ms",
    "generation_time_count",
)


def upgrade() -> None:
    rollups = op.create_table(
        "generation_rollups",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("provider_slug", sa.String(length=255), nullable=False),
        sa.Column("provider_name", sa.String(length=255), nullable=False),
        sa.Column("api_type", sa.String(length=16), nullable=False),
        sa.Column("app", sa.String(length=255), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTS[:7]),
        sa.Column("usage", Money(), nullable=False),
        sa.Column("byok_usage", Money(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTS[7:]),
        sa.UniqueConstraint(*GRAIN, name="uq_generation_rollups_grain"),
    )
    op.create_index("ix_generation_rollups_day", "generation_rollups", ["day"])
    op.create_table(
        "generation_feedback",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("generation_id", sa.String(length=40), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_generation_feedback_generation", "generation_feedback", ["generation_id"])
    op.create_index("ix_generations_created", "generations", ["created_at"])
    _backfill(op.get_bind(), rollups)


def downgrade() -> None:
    op.drop_index("ix_generations_created", table_name="generations")
    op.drop_index("ix_generation_feedback_generation", table_name="generation_feedback")
    op.drop_table("generation_feedback")
    op.drop_index("ix_generation_rollups_day", table_name="generation_rollups")
    op.drop_table("generation_rollups")


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
            "api_type",
            "app_title",
            "cancelled",
            "tokens_prompt",
            "tokens_completion",
            "native_tokens_reasoning",
            "native_tokens_cached",
            "latency_ms",
            "generation_time_ms",
            "is_byok",
        )
    ),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("error", sa.Text()),
    sa.column("total_cost", Money()),
    sa.column("upstream_inference_cost", Money()),
)


def _backfill(conn: sa.Connection, rollups: sa.Table) -> None:
    """Sum the generations recorded so far: in the database on PostgreSQL (exact NUMERIC sums), in
    Python on SQLite (whose money is decimal strings its own SUM would turn into floats)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(_PG_BACKFILL))
        return
    sums: dict[tuple[Any, ...], list[Any]] = {}
    result = conn.execution_options(yield_per=5000).execute(sa.select(_g))
    for g in result.mappings():
        _add(sums, g)
    _insert(conn, rollups, sums.items())


def _add(sums: dict[tuple[Any, ...], list[Any]], g: Any) -> None:
    at = g["created_at"]
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    hour = at.replace(minute=0, second=0, microsecond=0)
    key = (hour, g["key_hash"], g["workspace_id"] or "", g["model"], g["provider_slug"] or "")
    key += (g["provider_name"] or "", g["api_type"] or "completions", g["app_title"] or "")
    row = sums.get(key)
    if row is None:
        row = sums[key] = [0] * 11 + [Decimal(0), Decimal(0)]
    err = g["error"]
    row[0] += 1
    row[1] += 1 if err not in (None, "null") else 0
    row[2] += 1 if g["cancelled"] else 0
    row[3] += g["tokens_prompt"] or 0
    row[4] += g["tokens_completion"] or 0
    row[5] += g["native_tokens_reasoning"] or 0
    row[6] += g["native_tokens_cached"] or 0
    if g["latency_ms"] is not None:
        row[7] += g["latency_ms"]
        row[8] += 1
    if g["generation_time_ms"] is not None:
        row[9] += g["generation_time_ms"]
        row[10] += 1
    row[11] += g["total_cost"] or 0
    if g["is_byok"]:
        row[12] += g["upstream_inference_cost"] or 0


def _insert(conn: sa.Connection, rollups: sa.Table, sums: Iterable[tuple[tuple[Any, ...], list[Any]]]) -> None:
    batch: list[dict[str, Any]] = []
    for key, row in sums:
        hour: datetime = key[0]
        batch.append(
            dict(zip(GRAIN, key, strict=True))
            | {"day": hour.strftime("%Y-%m-%d")}
            | dict(zip(COUNTS, row[:11], strict=True))
            | {"usage": row[11], "byok_usage": row[12]}
        )
        if len(batch) >= 5000:
            conn.execute(sa.insert(rollups), batch)
            batch = []
    if batch:
        conn.execute(sa.insert(rollups), batch)


_PG_BACKFILL = """
INSERT INTO generation_rollups (hour, day, key_hash, workspace_id, model, provider_slug, provider_name,
    api_type, app, requests, errors, cancelled, prompt_tokens, completion_tokens, reasoning_tokens,
    cached_tokens, usage, byok_usage, latency_ms, latency_count, generation_time_ms, generation_time_count)
SELECT h, to_char(h AT TIME ZONE 'UTC', 'YYYY-MM-DD'), key_hash, ws, model, ps, pn, at, app,
    count(*),
    count(*) FILTER (WHERE error IS NOT NULL AND error::text <> 'null'),
    count(*) FILTER (WHERE cancelled),
    coalesce(sum(tokens_prompt), 0), coalesce(sum(tokens_completion), 0),
    coalesce(sum(native_tokens_reasoning), 0), coalesce(sum(native_tokens_cached), 0),
    coalesce(sum(total_cost), 0),
    coalesce(sum(upstream_inference_cost) FILTER (WHERE is_byok), 0),
    coalesce(sum(latency_ms), 0), count(latency_ms),
    coalesce(sum(generation_time_ms), 0), count(generation_time_ms)
FROM (
    SELECT *, date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS h,
        coalesce(workspace_id, '') AS ws, coalesce(provider_slug, '') AS ps,
        coalesce(provider_name, '') AS pn, coalesce(api_type, 'completions') AS at, coalesce(app_title, '') AS app
    FROM generations
) AS g
GROUP BY h, key_hash, ws, model, ps, pn, at, app
"""
