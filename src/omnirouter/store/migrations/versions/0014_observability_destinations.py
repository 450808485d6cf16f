"""observability destinations and their outbox (events written with the generations they follow)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "observability_destinations",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("privacy_mode", sa.Boolean(), nullable=False),
        sa.Column("broadcast_generation_cost", sa.Boolean(), nullable=False),
        sa.Column("broadcast_generation_identity", sa.Boolean(), nullable=False),
        sa.Column("broadcast_generation_request_context", sa.Boolean(), nullable=False),
        sa.Column("broadcast_generation_cost_allocation", sa.Boolean(), nullable=False),
        sa.Column("regions", sa.JSON(), nullable=False),
        sa.Column("sampling_rate", sa.Float(), nullable=False),
        sa.Column("api_key_hashes", sa.JSON(), nullable=True),
        sa.Column("filter_rules", sa.JSON(), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=False),
        sa.Column("masked", sa.JSON(), nullable=False),
        sa.Column("delivered_count", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("failed_count", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("last_delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_observability_destinations_workspace", "observability_destinations", ["workspace_id", "deleted"]
    )
    op.create_table(
        "observability_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("destination_id", sa.String(length=36), nullable=False),
        sa.Column("generation_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_token", sa.String(length=36), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_observability_outbox_due", "observability_outbox", ["destination_id", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_observability_outbox_due", table_name="observability_outbox")
    op.drop_table("observability_outbox")
    op.drop_index("ix_observability_destinations_workspace", table_name="observability_destinations")
    op.drop_table("observability_destinations")
