"""stages: one row per lock, so that two runs of a writing stage take turns

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stage_locks",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("held_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("stage_locks")
