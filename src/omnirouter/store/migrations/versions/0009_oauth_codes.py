"""oauth_codes: PKCE authorisation codes exchanged once for a key

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from omnirouter.store.types import Money

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_codes",
        sa.Column("code_hash", sa.String(length=64), primary_key=True),
        sa.Column("callback_url", sa.String(length=2048), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=True),
        sa.Column("code_challenge_method", sa.String(length=8), nullable=True),
        sa.Column("key_name", sa.String(length=255), nullable=False),
        sa.Column("key_limit", Money(precision=38, scale=18), nullable=True),
        sa.Column("key_limit_reset", sa.String(length=16), nullable=True),
        sa.Column("key_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("workspace_id", sa.String(length=64), nullable=True),
        sa.Column("creator_user_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("key_hash", sa.String(length=64), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("oauth_codes")
