"""import: a bad optional value is left out of a row that loads; the quarantine says which

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 02:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(sa.Column("row_loaded", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("row_loaded")
