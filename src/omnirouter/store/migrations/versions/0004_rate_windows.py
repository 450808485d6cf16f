"""rate_windows: each rate-limited key's recent requests and tokens, when the database (not Redis) is
where workers and instances meet (accounting/ratelimit.py)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_windows",
        sa.Column("key_hash", sa.String(length=64), primary_key=True),
        sa.Column("requests", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_windows")
