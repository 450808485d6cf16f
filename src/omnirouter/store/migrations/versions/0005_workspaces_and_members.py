"""workspaces, organisation members and workspace members; existing keys move into the default workspace;
generations.workspace_id

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import omnirouter.store.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# governance/workspaces.py DEFAULT_WORKSPACE_ID (copied: a migration must not change with the code).
DEFAULT_WORKSPACE_ID = "00000000-0000-4000-8000-000000000000"
OLD_DEFAULT = "default"  # what keys without a workspace showed before

_workspaces = sa.table(
    "workspaces",
    sa.column("id", sa.String),
    sa.column("name", sa.String),
    sa.column("slug", sa.String),
    sa.column("include_byok_in_budgets", sa.Boolean),
    sa.column("is_observability_io_logging_enabled", sa.Boolean),
    sa.column("is_observability_broadcast_enabled", sa.Boolean),
    sa.column("is_data_discount_logging_enabled", sa.Boolean),
    sa.column("io_logging_sampling_rate", sa.Float),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
_keys = sa.table("api_keys", sa.column("workspace_id", sa.String))


def _slug(text: str, taken: set[str]) -> str:
    base = "-".join(re.findall("[a-z0-9]+", text.lower()))[:40] or "workspace"
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    taken.add(slug)
    return slug


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("slug", sa.String(length=50), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("default_text_model", sa.String(length=255), nullable=True),
        sa.Column("default_image_model", sa.String(length=255), nullable=True),
        sa.Column("default_provider_sort", sa.String(length=32), nullable=True),
        sa.Column("include_byok_in_budgets", sa.Boolean(), nullable=False),
        sa.Column("is_observability_io_logging_enabled", sa.Boolean(), nullable=False),
        sa.Column("is_observability_broadcast_enabled", sa.Boolean(), nullable=False),
        sa.Column("is_data_discount_logging_enabled", sa.Boolean(), nullable=False),
        sa.Column("io_logging_sampling_rate", sa.Float(), nullable=False),
        sa.Column("io_logging_api_key_ids", sa.JSON(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    op.create_table(
        "workspace_budgets",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("interval", sa.String(length=16), nullable=False),
        sa.Column("limit_usd", omnirouter.store.types.Money(precision=38, scale=18), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "interval", name="uq_workspace_budgets_interval"),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("first_name", sa.String(length=100), nullable=True),
        sa.Column("last_name", sa.String(length=100), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_table(
        "workspace_members",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "user_id", name="uq_workspace_members_user"),
    )

    # The workspace each generation is attributed to (GET /generation's workspace_id).
    with op.batch_alter_table("generations") as batch:
        batch.add_column(sa.Column("workspace_id", sa.String(length=64), nullable=True))

    conn = op.get_bind()
    now = datetime.now(UTC)
    flags = {
        "include_byok_in_budgets": False,
        "is_observability_io_logging_enabled": False,
        "is_observability_broadcast_enabled": False,
        "is_data_discount_logging_enabled": True,
        "io_logging_sampling_rate": 1.0,
        "created_at": now,
    }
    rows = [{"id": DEFAULT_WORKSPACE_ID, "name": "Default Workspace", "slug": "default", **flags}]
    # Keys created with a workspace_id of their own (accepted unchecked before): that workspace now
    # exists, under the same id, so that listing by it finds the same keys.
    taken = {"default"}
    others = conn.execute(
        sa.select(_keys.c.workspace_id)
        .where(_keys.c.workspace_id.is_not(None), _keys.c.workspace_id != OLD_DEFAULT)
        .distinct()
    )
    # Ids that are slugs already keep them as their slug.
    for wid in sorted((r[0] for r in others), key=lambda w: (_slug(w, set()) != w, w)):
        rows.append({"id": wid, "name": wid[:100], "slug": _slug(wid, taken), **flags})
    op.bulk_insert(_workspaces, rows)
    conn.execute(
        sa.update(_keys)
        .where(sa.or_(_keys.c.workspace_id.is_(None), _keys.c.workspace_id == OLD_DEFAULT))
        .values(workspace_id=DEFAULT_WORKSPACE_ID)
    )


def downgrade() -> None:
    op.get_bind().execute(
        sa.update(_keys).where(_keys.c.workspace_id == DEFAULT_WORKSPACE_ID).values(workspace_id=None)
    )
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("workspace_id")
    op.drop_table("workspace_members")
    op.drop_table("members")
    op.drop_table("workspace_budgets")
    op.drop_table("workspaces")
