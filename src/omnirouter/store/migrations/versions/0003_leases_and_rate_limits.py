"""budget_leases (what each worker holds of a shared budget), api_keys.rpm_limit and tpm_limit

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from omnirouter.store.types import Money

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "budget_leases",
        sa.Column("bucket", sa.String(length=120), primary_key=True),
        sa.Column("holder", sa.String(length=64), primary_key=True),
        sa.Column("amount", Money(precision=38, scale=18), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),  # epoch milliseconds
    )
    op.add_column("api_keys", sa.Column("rpm_limit", sa.Integer(), nullable=True))
    op.add_column("api_keys", sa.Column("tpm_limit", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("tpm_limit")
        batch.drop_column("rpm_limit")
    op.drop_table("budget_leases")
