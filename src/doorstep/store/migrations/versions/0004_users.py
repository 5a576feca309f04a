"""web app: users, API tokens, and the indexes its pages read by

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 14:00:00.000000
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
        "users",
        sa.Column("user_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("partner_id", sa.String(length=200), nullable=True),
        sa.Column("rep_id", sa.String(length=200), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("session_stamp", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("user_id"),
        sa.UniqueConstraint("email"),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_partner_id"), ["partner_id"], unique=False)

    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("token_id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.create_index("ix_leads_partner_updated", ["partner_id", "updated_at", "lead_id"])
        batch_op.create_index("ix_leads_owner_due", ["owner_id", "due_at", "lead_id"])
        batch_op.create_index("ix_leads_status_due", ["status", "due_at", "lead_id"])
    with op.batch_alter_table("overlaps", schema=None) as batch_op:
        batch_op.create_index("ix_overlaps_partner", ["partner_id", "partner_account_id"])


def downgrade() -> None:
    with op.batch_alter_table("overlaps", schema=None) as batch_op:
        batch_op.drop_index("ix_overlaps_partner")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index("ix_leads_status_due")
        batch_op.drop_index("ix_leads_owner_due")
        batch_op.drop_index("ix_leads_partner_updated")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))
    op.drop_table("api_tokens")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_partner_id"))
    op.drop_table("users")
