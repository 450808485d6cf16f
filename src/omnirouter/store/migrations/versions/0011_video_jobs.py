"""video_jobs: video generation jobs, polled upstream until they complete and billed once

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from omnirouter.store.types import Money

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "video_jobs",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("generation_id", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("provider_slug", sa.String(length=255), nullable=False),
        sa.Column("endpoint_slug", sa.String(length=255), nullable=False),
        sa.Column("upstream_id", sa.String(length=512), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("seconds", Money(precision=38, scale=18), nullable=True),
        sa.Column("cost", Money(precision=38, scale=18), nullable=True),
        sa.Column("outputs", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("workspace_id", sa.String(length=64), nullable=True),
        sa.Column("byok_key_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("billed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_poll_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("poll_interval", sa.Float(), nullable=False),
        sa.Column("poll_errors", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("lease_token", sa.String(length=36), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_video_jobs_status_next_poll", "video_jobs", ["status", "next_poll_at"])
    op.create_index("ix_video_jobs_key", "video_jobs", ["key_hash", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_video_jobs_key", table_name="video_jobs")
    op.drop_index("ix_video_jobs_status_next_poll", table_name="video_jobs")
    op.drop_table("video_jobs")
