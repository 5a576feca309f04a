"""partner exchange: linked installs, seen nonces, and an audit row for every exchange

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 22:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partner_links",
        sa.Column("partner_id", sa.String(length=200), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("their_levels", sa.JSON(), nullable=True),
        sa.Column("linked_at", sa.DateTime(), nullable=False),
        sa.Column("bundle_id", sa.String(length=64), nullable=True),
        sa.Column("bundle_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("partner_id"),
    )
    op.create_table(
        "share_nonces",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.String(length=200), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("nonce"),
    )
    op.create_table(
        "share_audit",
        sa.Column("audit_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("audit_id"),
    )
    op.create_index("ix_share_audit_partner_at", "share_audit", ["partner_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_share_audit_partner_at", table_name="share_audit")
    op.drop_table("share_audit")
    op.drop_table("share_nonces")
    op.drop_table("partner_links")
