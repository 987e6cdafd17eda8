"""The gateway's tables, as SQLAlchemy Core metadata.

Invariants:
- No table holds a name, ID number or account number in clear text. Personal
  data lives only inside AES-GCM sealed blobs (``batch_chunks.sealed``,
  ``exchange_sets.sealed``); matching uses keyed HMAC digests (``*_digest``).
- Submitted batch content never changes (Art. 15). ``batch_chunks`` and the
  content columns of ``batches`` and ``records`` are guarded by database
  triggers that refuse UPDATE and DELETE (see ``gateway.store.immutability``).
  Only state columns change.
- ``claims`` backs the duplicate rule with a uniqueness constraint on
  (person, policy, period): two concurrent submissions cannot both accept the
  same payment. A claim is released when its record is rejected by the bank,
  fails or is returned.
- ``evidence`` keeps every signed envelope a bank sent, byte for byte.
- Money is integer fen (BigInteger), never floating point.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


def _batch_fk() -> ForeignKey:
    # Deferred: a batch row is written last, once its content digest is known,
    # in the same transaction as its chunks and records.
    return ForeignKey("batches.batch_id", deferrable=True, initially="DEFERRED")


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, naive UTC stored.

    SQLite has no time zone type; storing naive UTC everywhere keeps ordering
    and comparison identical on SQLite and PostgreSQL.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused; pass UTC")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC)


Timestamp = UtcDateTime()

policies = Table(
    "policies",
    metadata,
    Column("policy_code", String(32), primary_key=True),
    Column("policy_name", String(128), nullable=False),
    Column("department", String(16), nullable=False),
    Column("department_name", String(64), nullable=False),
    Column("period_kind", String(8), nullable=False),
    Column("max_amount_fen", BigInteger, nullable=False),
    Column("requires_list", String(32)),
    Column("excludes_list", String(32)),
)

banks = Table(
    "banks",
    metadata,
    Column("bank_code", String(16), primary_key=True),
    Column("bank_name", String(64), nullable=False),
    Column("card_prefix", String(16), nullable=False),
)

agent_banks = Table(
    "agent_banks",
    metadata,
    Column("county", String(6), primary_key=True),
    Column("policy_code", String(32), primary_key=True),
    Column("bank_code", String(16), nullable=False),
    Column("connector", String(32), nullable=False),
)

registry_accounts = Table(
    "registry_accounts",
    metadata,
    Column("person_digest", LargeBinary(32), primary_key=True),
    Column("bank_code", String(16), nullable=False),
    Column("account_digest", LargeBinary(32), nullable=False),
    Column("account_kind", String(8), nullable=False),
    Column("proxy_person_digest", LargeBinary(32)),
    Column("registered_at", Timestamp, nullable=False),
)

reference_lists = Table(
    "reference_lists",
    metadata,
    Column("list_name", String(32), primary_key=True),
    Column("person_digest", LargeBinary(32), primary_key=True),
)

batches = Table(
    "batches",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("department_org", String(64), nullable=False),
    Column("county", String(6), nullable=False),
    Column("department", String(16), nullable=False),
    Column("policy_code", String(32), nullable=False),
    Column("period", String(7), nullable=False),
    Column("bank_code", String(16), nullable=False),
    Column("content_digest", String(64), nullable=False),
    Column("record_count", Integer, nullable=False),
    Column("total_amount_fen", BigInteger, nullable=False),
    Column("source_file", String(255), nullable=False),
    Column("submitted_at", Timestamp, nullable=False),
    # The signed manifest, exactly as received.
    Column("manifest_payload", LargeBinary, nullable=False),
    Column("manifest_signature", LargeBinary, nullable=False),
    Column("signer_certificate", LargeBinary, nullable=False),
    # The batch's data key, wrapped by a key-encryption key.
    Column("kek_id", String(64), nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    # Mutable.
    Column("state", String(16), nullable=False),
    Column("closed_at", Timestamp),
    # Set when the batch's keys were destroyed at the end of its retention.
    Column("shredded_at", Timestamp),
    UniqueConstraint("department_org", "policy_code", "period", "content_digest"),
)

batch_chunks = Table(
    "batch_chunks",
    metadata,
    Column("batch_id", String(64), _batch_fk(), primary_key=True),
    Column("chunk_index", Integer, primary_key=True),
    Column("chunk_sha256", LargeBinary(32), nullable=False),
    # AES-GCM(data key) of the verified chunk bytes.
    Column("sealed", LargeBinary, nullable=False),
)

records = Table(
    "records",
    metadata,
    Column("record_id", String(80), primary_key=True),
    Column("batch_id", String(64), _batch_fk(), nullable=False),
    Column("row", Integer, nullable=False),
    Column("chunk_index", Integer, nullable=False),
    Column("person_digest", LargeBinary(32)),
    Column("account_digest", LargeBinary(32)),
    Column("amount_fen", BigInteger),
    Column("corrects_record_id", String(80)),
    # Mutable.
    Column("state", String(16), nullable=False),
    Column("reasons", String(255), nullable=False),
    Column("check_set_id", String(96)),
    Column("instruction_set_id", String(96)),
    Column("updated_at", Timestamp, nullable=False),
    Index("ix_records_batch_row", "batch_id", "row", unique=True),
    Index("ix_records_check_set", "check_set_id"),
    Index("ix_records_instruction_set", "instruction_set_id"),
    Index("ix_records_corrects", "corrects_record_id"),
    Index("ix_records_batch_state", "batch_id", "state"),
)

claims = Table(
    "claims",
    metadata,
    Column("person_digest", LargeBinary(32), primary_key=True),
    Column("policy_code", String(32), primary_key=True),
    Column("period", String(7), primary_key=True),
    Column("record_id", String(80), nullable=False),
    # A record's claim is released by record id when it fails or returns.
    Index("ix_claims_record", "record_id"),
)

exchange_sets = Table(
    "exchange_sets",
    metadata,
    Column("set_id", String(96), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("bank_code", String(16), nullable=False),
    Column("batch_id", String(64), _batch_fk(), nullable=False),
    Column("item_count", Integer, nullable=False),
    # AES-GCM(batch data key) of the signed envelope: identical bytes on
    # every redelivery.
    Column("sealed", LargeBinary, nullable=False),
    Column("envelope_sha256", LargeBinary(32), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    # Mutable.
    Column("state", String(16), nullable=False),
    Column("lease_id", String(64)),
    Column("lease_expires_at", Timestamp),
    Column("deliveries", Integer, nullable=False),
    Column("acknowledged_at", Timestamp),
    Index("ix_exchange_sets_pull", "bank_code", "kind", "state"),
    Index("ix_exchange_sets_batch", "batch_id", "kind"),
)

evidence = Table(
    "evidence",
    metadata,
    Column("set_id", String(96), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("bank_code", String(16), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("payload_sha256", LargeBinary(32), nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("signer_certificate", LargeBinary, nullable=False),
    Column("received_at", Timestamp, nullable=False),
)

results = Table(
    "results",
    metadata,
    Column("result_id", Integer, primary_key=True, autoincrement=True),
    Column("instruction_id", String(80), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason_code", String(32), nullable=False),
    Column("bank_reference", String(64), nullable=False),
    Column("completed_at", Timestamp, nullable=False),
    Column("result_set_id", String(96), nullable=False),
    Column("received_at", Timestamp, nullable=False),
    UniqueConstraint("instruction_id", "status"),
)

registry_declarations = Table(
    "registry_declarations",
    metadata,
    Column("declaration_id", String(40), primary_key=True),
    Column("county", String(6), nullable=False),
    Column("person_digest", LargeBinary(32), nullable=False),
    Column("bank_code", String(16), nullable=False),
    Column("account_digest", LargeBinary(32), nullable=False),
    Column("account_kind", String(8), nullable=False),
    Column("proxy_person_digest", LargeBinary(32)),
    Column("application_reference", String(64), nullable=False),
    Column("changes_registered_account", Boolean, nullable=False),
    Column("declared_by", String(64), nullable=False),
    Column("declared_at", Timestamp, nullable=False),
    # Mutable.
    Column("state", String(16), nullable=False),
    Index("ix_registry_declarations_person", "person_digest"),
)

# Every step of a declaration: who did what, and when. Append-only.
declaration_steps = Table(
    "declaration_steps",
    metadata,
    Column("declaration_id", String(40), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("state", String(16), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("at", Timestamp, nullable=False),
    Column("note", String(255), nullable=False),
)

# The agent bank's positive answers to account checks, reused until expiry.
# ``holder_digest`` covers the holder's ID number and name together.
account_verifications = Table(
    "account_verifications",
    metadata,
    Column("bank_code", String(16), primary_key=True),
    Column("account_digest", LargeBinary(32), primary_key=True),
    Column("holder_digest", LargeBinary(32), primary_key=True),
    Column("verified_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
)

# Art. 19: the treasury released a batch's funds to the agent bank.
funds_releases = Table(
    "funds_releases",
    metadata,
    Column("batch_id", String(64), _batch_fk(), primary_key=True),
    Column("released_at", Timestamp, nullable=False),
    Column("treasury_reference", String(64), nullable=False),
    Column("recorded_by", String(64), nullable=False),
    Column("recorded_at", Timestamp, nullable=False),
)

# Art. 19-22: what an agent bank must do by when. A breach, once recorded,
# stays recorded.
deadlines = Table(
    "deadlines",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("subject_id", String(96), primary_key=True),
    Column("bank_code", String(16), nullable=False),
    Column("batch_id", String(64), nullable=False),
    Column("due_at", Timestamp, nullable=False),
    Column("provisional", Boolean, nullable=False),
    # Mutable.
    Column("met_at", Timestamp),
    Column("breached_at", Timestamp),
    Index("ix_deadlines_open", "met_at", "due_at"),
)

# The audit log: append-only, each entry chained to the one before it.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", Timestamp, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(48), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("detail", String(1024), nullable=False),
    Column("prev_hash", LargeBinary(32), nullable=False),
    Column("entry_hash", LargeBinary(32), nullable=False),
)

# Checkpoints: the gateway's signature over the chain head, now and then.
audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("entry_hash", LargeBinary(32), nullable=False),
    Column("signed_at", Timestamp, nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("signer_certificate", LargeBinary, nullable=False),
)

# Columns a trigger protects: the submitted content (Art. 15) and evidence.
IMMUTABLE_COLUMNS: dict[str, tuple[str, ...]] = {
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
