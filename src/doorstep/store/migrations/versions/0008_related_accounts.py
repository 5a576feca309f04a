"""related accounts: the same brand in another country, kept apart from overlaps

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 23:00:00.000000
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
        "related_accounts",
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("partner_id", sa.String(length=200), nullable=False),
        sa.Column("partner_account_id", sa.String(length=200), nullable=False),
        sa.Column("relationship", sa.String(length=20), nullable=False),
        sa.Column("method", sa.String(length=30), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=True),
        sa.Column("mapped_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "partner_id", "partner_account_id"),
    )


def downgrade() -> None:
    op.drop_table("related_accounts")
