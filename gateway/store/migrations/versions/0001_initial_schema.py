"""initial schema

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.store.immutability import statements_for

FROZEN_COLUMNS: dict[str, tuple[str, ...]] = {
    "batches": (
        "batch_id",
        "department_org",
        "policy_code",
        "period",
        "content_digest",
        "record_count",
        "total_amount_fen",
        "manifest_payload",
        "manifest_signature",
        "signer_certificate",
    ),
    "batch_chunks": ("batch_id", "chunk_index", "chunk_sha256", "sealed"),
    "records": ("record_id", "batch_id", "row", "person_digest", "amount_fen"),
    "evidence": ("set_id", "payload", "signature", "signer_certificate"),
    "results": ("instruction_id", "status", "bank_reference", "result_set_id"),
}


revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables, then the triggers that keep content immutable."""
    op.create_table(
        "agent_banks",
        sa.Column("county", sa.String(length=6), nullable=False),
        sa.Column("policy_code", sa.String(length=32), nullable=False),
        sa.Column("bank_code", sa.String(length=16), nullable=False),
        sa.Column("connector", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("county", "policy_code", name=op.f("pk_agent_banks")),
    )
    op.create_table(
        "banks",
        sa.Column("bank_code", sa.String(length=16), nullable=False),
        sa.Column("bank_name", sa.String(length=64), nullable=False),
        sa.Column("card_prefix", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("bank_code", name=op.f("pk_banks")),
    )
    op.create_table(
        "batches",
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("department_org", sa.String(length=64), nullable=False),
        sa.Column("county", sa.String(length=6), nullable=False),
        sa.Column("department", sa.String(length=16), nullable=False),
        sa.Column("policy_code", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("bank_code", sa.String(length=16), nullable=False),
        sa.Column("content_digest", sa.String(length=64), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("total_amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("source_file", sa.String(length=255), nullable=False),
        sa.Column("submitted_at", sa.DateTime(), nullable=False),
        sa.Column("manifest_payload", sa.LargeBinary(), nullable=False),
        sa.Column("manifest_signature", sa.LargeBinary(), nullable=False),
        sa.Column("signer_certificate", sa.LargeBinary(), nullable=False),
        sa.Column("kek_id", sa.String(length=64), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_batches")),
        sa.UniqueConstraint(
            "department_org",
            "policy_code",
            "period",
            "content_digest",
            name=op.f("uq_batches_department_org"),
        ),
    )
    op.create_table(
        "claims",
        sa.Column("person_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("policy_code", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("record_id", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint(
            "person_digest", "policy_code", "period", name=op.f("pk_claims")
        ),
    )
    op.create_table(
        "evidence",
        sa.Column("set_id", sa.String(length=96), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("bank_code", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("payload_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("signer_certificate", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("set_id", name=op.f("pk_evidence")),
    )
    op.create_table(
        "policies",
        sa.Column("policy_code", sa.String(length=32), nullable=False),
        sa.Column("policy_name", sa.String(length=128), nullable=False),
        sa.Column("department", sa.String(length=16), nullable=False),
        sa.Column("department_name", sa.String(length=64), nullable=False),
        sa.Column("period_kind", sa.String(length=8), nullable=False),
        sa.Column("max_amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("requires_list", sa.String(length=32), nullable=True),
        sa.Column("excludes_list", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("policy_code", name=op.f("pk_policies")),
    )
    op.create_table(
        "reference_lists",
        sa.Column("list_name", sa.String(length=32), nullable=False),
        sa.Column("person_digest", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint(
            "list_name", "person_digest", name=op.f("pk_reference_lists")
        ),
    )
    op.create_table(
        "registry_accounts",
        sa.Column("person_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("bank_code", sa.String(length=16), nullable=False),
        sa.Column("account_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("account_kind", sa.String(length=8), nullable=False),
        sa.Column("proxy_person_digest", sa.LargeBinary(length=32), nullable=True),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("person_digest", name=op.f("pk_registry_accounts")),
    )
    op.create_table(
        "results",
        sa.Column("result_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("instruction_id", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason_code", sa.String(length=32), nullable=False),
        sa.Column("bank_reference", sa.String(length=64), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=False),
        sa.Column("result_set_id", sa.String(length=96), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("result_id", name=op.f("pk_results")),
        sa.UniqueConstraint(
            "instruction_id", "status", name=op.f("uq_results_instruction_id")
        ),
    )
    op.create_table(
        "batch_chunks",
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("chunk_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.batch_id"],
            name=op.f("fk_batch_chunks_batch_id"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint(
            "batch_id", "chunk_index", name=op.f("pk_batch_chunks")
        ),
    )
    op.create_table(
        "exchange_sets",
        sa.Column("set_id", sa.String(length=96), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("bank_code", sa.String(length=16), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("envelope_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("lease_id", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(), nullable=True),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.batch_id"],
            name=op.f("fk_exchange_sets_batch_id"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("set_id", name=op.f("pk_exchange_sets")),
    )
    op.create_index(
        "ix_exchange_sets_pull",
        "exchange_sets",
        ["bank_code", "kind", "state"],
        unique=False,
    )
    op.create_table(
        "records",
        sa.Column("record_id", sa.String(length=80), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("person_digest", sa.LargeBinary(length=32), nullable=True),
        sa.Column("account_digest", sa.LargeBinary(length=32), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("corrects_record_id", sa.String(length=80), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.String(length=255), nullable=False),
        sa.Column("check_set_id", sa.String(length=96), nullable=True),
        sa.Column("instruction_set_id", sa.String(length=96), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.batch_id"],
            name=op.f("fk_records_batch_id"),
            initially="DEFERRED",
            deferrable=True,
        ),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_records")),
    )
    op.create_index("ix_records_batch_row", "records", ["batch_id", "row"], unique=True)
    op.create_index("ix_records_check_set", "records", ["check_set_id"], unique=False)
    op.create_index(
        "ix_records_instruction_set", "records", ["instruction_set_id"], unique=False
    )

    # The trigger list is frozen here, as it stood at this revision; a later
    # revision that protects more columns adds its own triggers.
    for statement in statements_for(op.get_bind().dialect.name, FROZEN_COLUMNS):
        op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_records_instruction_set", table_name="records")
    op.drop_index("ix_records_check_set", table_name="records")
    op.drop_index("ix_records_batch_row", table_name="records")
    op.drop_table("records")
    op.drop_index("ix_exchange_sets_pull", table_name="exchange_sets")
    op.drop_table("exchange_sets")
    op.drop_table("batch_chunks")
    op.drop_table("results")
    op.drop_table("registry_accounts")
    op.drop_table("reference_lists")
    op.drop_table("policies")
    op.drop_table("evidence")
    op.drop_table("claims")
    op.drop_table("batches")
    op.drop_table("banks")
    op.drop_table("agent_banks")
