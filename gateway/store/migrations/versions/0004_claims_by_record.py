"""An index on claims by record, for releasing a record's claim

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_claims_record", "claims", ["record_id"])


def downgrade() -> None:
    op.drop_index("ix_claims_record", table_name="claims")
