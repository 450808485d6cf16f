"""guardrails and their assignments to keys and members; what guardrails did to each generation

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import omnirouter.store.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_FLAGS = (
    "enforce_zdr",
    "enforce_zdr_anthropic",
    "enforce_zdr_openai",
    "enforce_zdr_google",
    "enforce_zdr_xai",
    "enforce_zdr_other",
    "enable_free_model_publication",
    "enable_free_model_training",
    "enable_paid_model_training",
)
_LISTS = (
    "allowed_models",
    "ignored_models",
    "allowed_providers",
    "ignored_providers",
    "content_filters",
    "content_filter_builtins",
)


def upgrade() -> None:
    op.create_table(
        "guardrails",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("workspace_default", sa.Boolean(), nullable=False),
        sa.Column("limit_usd", omnirouter.store.types.Money(precision=38, scale=18), nullable=True),
        sa.Column("reset_interval", sa.String(length=16), nullable=True),
        sa.Column("include_byok_in_budgets", sa.Boolean(), nullable=False),
        *(sa.Column(name, sa.JSON(), nullable=True) for name in _LISTS),
        *(sa.Column(name, sa.Boolean(), nullable=True) for name in _FLAGS),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_guardrails_workspace_name"),
    )
    op.create_table(
        "guardrail_key_assignments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("guardrail_id", sa.String(length=36), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("assigned_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash", name="uq_guardrail_key_assignments_key"),
    )
    op.create_index("ix_guardrail_key_assignments_guardrail", "guardrail_key_assignments", ["guardrail_id"])
    op.create_table(
        "guardrail_member_assignments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("guardrail_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("assigned_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", name="uq_guardrail_member_assignments_user"),
    )
    op.create_index("ix_guardrail_member_assignments_guardrail", "guardrail_member_assignments", ["guardrail_id"])
    with op.batch_alter_table("generations") as batch:
        batch.add_column(sa.Column("guardrail_actions", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("guardrail_actions")
    op.drop_index("ix_guardrail_member_assignments_guardrail", table_name="guardrail_member_assignments")
    op.drop_table("guardrail_member_assignments")
    op.drop_index("ix_guardrail_key_assignments_guardrail", table_name="guardrail_key_assignments")
    op.drop_table("guardrail_key_assignments")
    op.drop_table("guardrails")
