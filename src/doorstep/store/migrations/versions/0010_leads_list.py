"""web app: the leads list sorts by any column and finds accounts by the start of their name

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 00:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SORTS = ("due_at", "updated_at", "created_at", "warmth_score", "fit_score")


def upgrade() -> None:
    for column in SORTS:
        op.create_index(f"ix_leads_by_{column}", "leads", [column, "lead_id"])
    op.create_index("ix_accounts_name_lower", "accounts", [sa.text("lower(name)")])


def downgrade() -> None:
    op.drop_index("ix_accounts_name_lower", table_name="accounts")
    for column in SORTS:
        op.drop_index(f"ix_leads_by_{column}", table_name="leads")
