"""registry declarations, account verifications, deadlines, audit log

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.store.immutability import statements_for

# The append-only columns of the new tables, as they stood at this revision.
FROZEN_COLUMNS: dict[str, tuple[str, ...]] = {
    "declaration_steps": ("declaration_id", "step", "state", "actor", "role", "at"),
    "audit_log": (
        "seq",
        "at",
        "actor",
        "action",
        "subject",
        "detail",
        "prev_hash",
        "entry_hash",
    ),
    "audit_checkpoints": ("seq", "entry_hash", "signature", "signer_certificate"),
}


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_verifications",
        sa.Column("bank_code", sa.String(length=16), nullable=False),
        sa.Column("account_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("holder_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("verified_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "bank_code",
            "account_digest",
            "holder_digest",
            name=op.f("pk_account_verifications"),
        ),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("entry_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signed_at", sa.DateTime(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("signer_certificate", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_checkpoints")),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("detail", sa.String(length=1024), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("entry_hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
    )
    op.create_table(
        "deadlines",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=96), nullable=False),
        sa.Column("bank_code", sa.String(length=16), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("provisional", sa.Boolean(), nullable=False),
        sa.Column("met_at", sa.DateTime(), nullable=True),
        sa.Column("breached_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("kind", "subject_id", name=op.f("pk_deadlines")),
    )
    op.create_index(
        "ix_deadlines_open", "deadlines", ["met_at", "due_at"], unique=False
    )
    op.create_table(
        "declaration_steps",
        sa.Column("declaration_id", sa.String(length=40), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint(
            "declaration_id", "step", name=op.f("pk_declaration_steps")
        ),
    )
    op.create_table(
        "registry_declarations",
        sa.Column("declaration_id", sa.String(length=40), nullable=False),
        sa.Column("county", sa.String(length=6), nullable=False),
        sa.Column("person_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("bank_code", sa.String(length=16), nullable=False),
        sa.Column("account_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("account_kind", sa.String(length=8), nullable=False),
        sa.Column("proxy_person_digest", sa.LargeBinary(length=32), nullable=True),
        sa.Column("application_reference", sa.String(length=64), nullable=False),
        sa.Column("changes_registered_account", sa.Boolean(), nullable=False),
        sa.Column("declared_by", sa.String(length=64), nullable=False),
        sa.Column("declared_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint(
            "declaration_id", name=op.f("pk_registry_declarations")
        ),
    )
    op.create_index(
        "ix_registry_declarations_person",
        "registry_declarations",
        ["person_digest"],
        unique=False,
    )
    op.create_table(
        "funds_releases",
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("released_at", sa.DateTime(), nullable=False),
        sa.Column("treasury_reference", sa.String(length=64), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.batch_id"],
            name=op.f("fk_funds_releases_batch_id"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_funds_releases")),
    )
    op.add_column("batches", sa.Column("closed_at", sa.DateTime(), nullable=True))
    op.create_index(
        "ix_records_corrects", "records", ["corrects_record_id"], unique=False
    )
    for statement in statements_for(op.get_bind().dialect.name, FROZEN_COLUMNS):
        op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_records_corrects", table_name="records")
    op.drop_column("batches", "closed_at")
    op.drop_table("funds_releases")
    op.drop_index("ix_registry_declarations_person", table_name="registry_declarations")
    op.drop_table("registry_declarations")
    op.drop_table("declaration_steps")
    op.drop_index("ix_deadlines_open", table_name="deadlines")
    op.drop_table("deadlines")
    op.drop_table("audit_log")
    op.drop_table("audit_checkpoints")
    op.drop_table("account_verifications")
