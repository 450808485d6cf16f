"""presets and their versions; generations.preset_id

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "presets",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("designated_version_id", sa.String(length=36), nullable=True),
        sa.Column("creator_user_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("workspace_id", "slug", name="uq_presets_workspace_slug"),
    )
    op.create_table(
        "preset_versions",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("preset_id", sa.String(length=36), sa.ForeignKey("presets.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("creator_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("preset_id", "version", name="uq_preset_versions_number"),
    )
    with op.batch_alter_table("generations") as batch:
        batch.add_column(sa.Column("preset_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generations") as batch:  # SQLite drops columns by copying the table
        batch.drop_column("preset_id")
    op.drop_table("preset_versions")
    op.drop_table("presets")
