"""The audit log: append-only, hash-chained, with signed checkpoints.

Every state change of batches, records, instructions and results, and every
hand-over of personal data (a bank leasing a set, a disclosure), is written
as one entry in the same transaction as the change itself: who (the
organisation), what (an action), when, and which records (a batch, set or
declaration id that names them; never their content).

Invariants and the threats they answer:
  * Each entry carries the SHA-256 of the one before it (``prev_hash``) and
    its own hash over its sequence number, time, actor, action, subject,
    detail and ``prev_hash``. Editing an entry breaks its own hash; deleting,
    inserting or reordering entries breaks the chain or the numbering.
  * The database refuses UPDATE and DELETE on audit rows (triggers, see
    ``gateway.store.immutability``). Someone with the power to drop the
    triggers can still rewrite the whole chain from some point on; the
    signed checkpoints are there for that: now and then the gateway signs
    the head of the chain with its own signing key, and a checkpoint cannot
    be forged without that key.
  * One chain, also with several gateways on one PostgreSQL: an append takes
    a transaction-scoped advisory lock, so appends are serialised and the
    chain stays a line. On SQLite every write transaction is already
    exclusive.
  * Entries never hold personal data: subjects are ids, details are counts
    and codes.

``verify`` walks the chain and names the first entry that is wrong.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from sqlalchemy import Connection, Engine, Row, func, insert, select, text

from gateway.store import schema
from keys.signing import Signer, UnsupportedKeyError, suite_for

GENESIS = bytes(32)
_LOCK_KEY = 0x796B7441  # "yktA": the audit chain's advisory lock
CHECKPOINT_PREFIX = b"ykt-audit-checkpoint-v1\n"
PAGE = 5000


@dataclass(frozen=True)
class Entry:
    seq: int
    at: dt.datetime
    actor: str
    action: str
    subject: str
    detail: str
    prev_hash: bytes
    entry_hash: bytes


def entry_hash(
    seq: int,
    at: dt.datetime,
    actor: str,
    action: str,
    subject: str,
    detail: str,
    prev_hash: bytes,
) -> bytes:
    """SHA-256 over a length-prefixed encoding of every field."""
    digest = hashlib.sha256(b"ykt-audit-v1\n")
    for part in (
        str(seq),
        at.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds"),
        actor,
        action,
        subject,
        detail,
    ):
        data = part.encode("utf-8")
        digest.update(len(data).to_bytes(4, "big") + data)
    digest.update(prev_hash)
    return digest.digest()


def append(
    connection: Connection,
    now: dt.datetime,
    actor: str,
    action: str,
    subject: str,
    detail: str = "",
) -> int:
    """Append one entry inside the caller's transaction; return its number."""
    _lock_chain(connection)
    table = schema.audit_log
    head = connection.execute(
        select(table.c.seq, table.c.entry_hash).order_by(table.c.seq.desc()).limit(1)
    ).one_or_none()
    seq = 1 if head is None else head.seq + 1
    prev = GENESIS if head is None else head.entry_hash
    at = now.astimezone(dt.UTC)
    subject, detail = subject[:128], detail[:1024]
    connection.execute(
        insert(table).values(
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            subject=subject,
            detail=detail,
            prev_hash=prev,
            entry_hash=entry_hash(seq, at, actor, action, subject, detail, prev),
        )
    )
    return seq


def _lock_chain(connection: Connection) -> None:
    """Hold the chain until the transaction ends, so appends stay in a line
    across replicas on PostgreSQL; SQLite's writers are exclusive already."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY}
        )


def checkpoint(engine: Engine, signer: Signer, now: dt.datetime) -> int | None:
    """Sign the head of the chain, if it moved since the last checkpoint."""
    with engine.begin() as connection:
        _lock_chain(connection)
        head = connection.execute(
            select(schema.audit_log.c.seq, schema.audit_log.c.entry_hash)
            .order_by(schema.audit_log.c.seq.desc())
            .limit(1)
        ).one_or_none()
        if head is None:
            return None
        last = connection.execute(
            select(func.max(schema.audit_checkpoints.c.seq))
        ).scalar_one()
        if last is not None and last >= head.seq:
            return None
        connection.execute(
            insert(schema.audit_checkpoints).values(
                seq=head.seq,
                entry_hash=head.entry_hash,
                signed_at=now,
                signature=signer.sign(_checkpoint_bytes(head.seq, head.entry_hash)),
                signer_certificate=signer.cert_der,
            )
        )
        return int(head.seq)


def _checkpoint_bytes(seq: int, head_hash: bytes) -> bytes:
    return CHECKPOINT_PREFIX + seq.to_bytes(8, "big") + head_hash


# -- verification ---------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """The first thing wrong with the chain, and where."""

    seq: int
    problem: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.problem}"


@dataclass(frozen=True)
class Verification:
    entries: int
    checkpoints: int
    finding: Finding | None

    @property
    def ok(self) -> bool:
        return self.finding is None


def verify(
    engine: Engine, *, trusted_signer: x509.Certificate | None = None
) -> Verification:
    """Walk the chain; report the first edited, missing, inserted or
    reordered entry, or a checkpoint the chain no longer matches.

    ``trusted_signer`` pins the gateway's signing certificate for
    checkpoints; without it, the certificate stored with each checkpoint is
    used, which proves integrity against the database but not against
    someone holding another key.
    """
    count = 0
    hashes: dict[int, bytes] = {}
    with engine.connect() as connection:
        expected_seq, prev = 1, GENESIS
        for entry in _entries(connection):
            count += 1
            if entry.seq != expected_seq:
                if entry.seq > expected_seq:
                    problem = f"missing: the log jumps from {expected_seq - 1}"
                    return Verification(count, 0, Finding(expected_seq, problem))
                return Verification(
                    count, 0, Finding(entry.seq, "numbered out of order")
                )
            recomputed = entry_hash(
                entry.seq,
                entry.at,
                entry.actor,
                entry.action,
                entry.subject,
                entry.detail,
                entry.prev_hash,
            )
            if recomputed != entry.entry_hash:
                problem = "edited or moved: its hash does not match its content"
                return Verification(count, 0, Finding(entry.seq, problem))
            if entry.prev_hash != prev:
                problem = "inserted, reordered or its predecessor replaced"
                return Verification(count, 0, Finding(entry.seq, problem))
            hashes[entry.seq] = entry.entry_hash
            prev = entry.entry_hash
            expected_seq += 1

        checkpoints = connection.execute(
            select(schema.audit_checkpoints).order_by(schema.audit_checkpoints.c.seq)
        ).all()
    last_seq = expected_seq - 1
    for row in checkpoints:
        if not _signature_ok(row, trusted_signer):
            return Verification(
                count, len(checkpoints), Finding(row.seq, "checkpoint signature bad")
            )
        if row.seq > last_seq:
            problem = f"missing: a checkpoint covers it, the log ends at {last_seq}"
            return Verification(count, len(checkpoints), Finding(last_seq + 1, problem))
        if hashes.get(row.seq) != row.entry_hash:
            problem = "does not match the signed checkpoint: the chain was rewritten"
            return Verification(count, len(checkpoints), Finding(row.seq, problem))
    return Verification(count, len(checkpoints), None)


def _entries(connection: Connection) -> Iterator[Entry]:
    table = schema.audit_log
    last = 0
    while True:
        page = connection.execute(
            select(table).where(table.c.seq > last).order_by(table.c.seq).limit(PAGE)
        ).all()
        for row in page:
            yield Entry(
                row.seq,
                row.at,
                row.actor,
                row.action,
                row.subject,
                row.detail,
                row.prev_hash,
                row.entry_hash,
            )
        if len(page) < PAGE:
            return
        last = page[-1].seq


def _signature_ok(row: Row[Any], trusted: x509.Certificate | None) -> bool:
    try:
        cert = trusted or x509.load_der_x509_certificate(row.signer_certificate)
        key = cert.public_key()
        suite_for(key).verify(
            key,
            row.signature,
            _checkpoint_bytes(row.seq, row.entry_hash),
        )
    except (ValueError, InvalidSignature, UnsupportedKeyError):
        return False
    return True
