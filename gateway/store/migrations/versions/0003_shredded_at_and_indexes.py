"""batches.shredded_at, and indexes for a batch's state and its sets

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
    op.create_index("ix_records_batch_state", "records", ["batch_id", "state"])
    op.create_index("ix_exchange_sets_batch", "exchange_sets", ["batch_id", "kind"])


def downgrade() -> None:
    op.drop_index("ix_exchange_sets_batch", table_name="exchange_sets")
    op.drop_index("ix_records_batch_state", table_name="records")
    op.drop_column("batches", "shredded_at")
