"""batches.shredded_at: when a batch's keys were destroyed

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("batches", sa.Column("shredded_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("batches", "shredded_at")
