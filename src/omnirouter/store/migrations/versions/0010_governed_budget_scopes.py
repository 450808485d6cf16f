"""Budgets of guardrails and workspaces on the usage counters: their scopes name a guardrail and what
it budgets ("grd:<guardrail id>:key:<key hash>"), longer than a key's scope, so the scope and lease
columns widen

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_counters") as batch:
        batch.alter_column("scope", type_=sa.String(200), existing_type=sa.String(80), existing_nullable=False)
    with op.batch_alter_table("budget_leases") as batch:
        batch.alter_column("bucket", type_=sa.String(240), existing_type=sa.String(120), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("budget_leases") as batch:
        batch.alter_column("bucket", type_=sa.String(120), existing_type=sa.String(240), existing_nullable=False)
    with op.batch_alter_table("usage_counters") as batch:
        batch.alter_column("scope", type_=sa.String(80), existing_type=sa.String(200), existing_nullable=False)
