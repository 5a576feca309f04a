"""warmth requests

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "warmth_requests",
        sa.Column("partner_id", sa.String(length=200), nullable=False),
        sa.Column("partner_account_id", sa.String(length=200), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("lead_id", sa.String(length=200), nullable=False),
        sa.Column("warmth_score", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("partner_id", "partner_account_id"),
    )
    with op.batch_alter_table("warmth_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_warmth_requests_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_warmth_requests_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("warmth_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_warmth_requests_status"))
        batch_op.drop_index(batch_op.f("ix_warmth_requests_account_id"))

    op.drop_table("warmth_requests")
