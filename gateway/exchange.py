"""The exchange with agent banks: signed sets out, signed answers back.

A *set* is the unit of signing, leasing and acknowledgement. The gateway
signs each set once and stores the signed bytes sealed with the batch's data
key, so every redelivery carries identical bytes.

Invariants and the threats they answer:
- A set is leased to one puller at a time. A set whose lease runs out without
  an acknowledgement is delivered again, byte for byte. On PostgreSQL leases
  take row locks that skip locked rows, so two pullers never get one set.
- A bank sees only its own sets; a set id of another bank is "not found".
- Answers are verified before they are parsed (``gateway.envelope``), must be
  signed by the calling bank, and may only concern sets and instructions
  that were delivered to that bank.
- Every signed answer is kept byte for byte as evidence. Posting the same
  answer again is a no-op; a different answer under the same id, or a result
  that contradicts one already recorded, is refused as a whole and logged as
  an alert. A RETURNED after a PAID is legal (Art. 22) and kept as history.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway import deadline_store
from gateway.core import GATEWAY_AUDIENCE, GatewayCore
from gateway.envelope import Opened, open_envelope, seal
from gateway.errors import (
    ConcurrentChangeError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionError,
)
from gateway.reasons import ReasonCode
from gateway.rules import Verdict
from gateway.sealing import DataKey
from gateway.states import FINAL_STATES, RELEASED_STATES, RecordState, SetKind, SetState
from gateway.store import bulk, schema
from keys.identity import Identity, Role
from ykt.v1 import envelope_pb2, exchange_pb2

_logger = logging.getLogger(__name__)

_CHECK = exchange_pb2
# Ids per IN clause: well under SQLite's bound on parameters.
IN_BATCH = 2000
CHECK_STATUS_REASONS: dict[int, ReasonCode | None] = {
    exchange_pb2.ACCOUNT_CHECK_STATUS_CONFIRMED: None,
    exchange_pb2.ACCOUNT_CHECK_STATUS_NOT_FOUND: ReasonCode.ACCOUNT_NOT_FOUND,
    exchange_pb2.ACCOUNT_CHECK_STATUS_CLOSED: ReasonCode.ACCOUNT_CLOSED,
    exchange_pb2.ACCOUNT_CHECK_STATUS_FROZEN: ReasonCode.ACCOUNT_FROZEN,
    _CHECK.ACCOUNT_CHECK_STATUS_HOLDER_MISMATCH: ReasonCode.ACCOUNT_HOLDER_MISMATCH,
}

RESULT_STATES: dict[int, RecordState] = {
    exchange_pb2.RESULT_STATUS_PAID: RecordState.PAID,
    exchange_pb2.RESULT_STATUS_FAILED: RecordState.FAILED,
    exchange_pb2.RESULT_STATUS_RETURNED: RecordState.RETURNED,
}

# Which result may follow which record state.
_ALLOWED_TRANSITIONS = {
    RecordState.INSTRUCTED: {
        RecordState.PAID,
        RecordState.FAILED,
        RecordState.RETURNED,
    },
    RecordState.PAID: {RecordState.RETURNED},
}


def _set_aad(set_id: str) -> bytes:
    return f"set:{set_id}".encode()


# -- building sets -------------------------------------------------------------


@dataclass(frozen=True)
class Routed:
    """Where an accepted record went: to an account check, or straight to an
    instruction because the bank confirmed its account recently."""

    state: RecordState
    check_set_id: str | None = None
    instruction_set_id: str | None = None


@dataclass(frozen=True)
class Payment:
    """One instruction's content, before it is signed into a set."""

    record_id: str
    payee_name: str
    account_number: str
    amount_fen: int


@dataclass(frozen=True)
class SetHeading:
    """What every instruction set of a batch says about its batch."""

    policy_code: str
    policy_name: str
    period: str
    # Whether the batch's funds have reached the bank (Art. 19).
    funds_released: bool

    @classmethod
    def of_batch(cls, connection: Connection, batch_id: str) -> SetHeading:
        row = connection.execute(
            select(
                schema.batches.c.policy_code,
                schema.batches.c.period,
                schema.policies.c.policy_name,
                schema.funds_releases.c.released_at,
            )
            .join(
                schema.policies,
                schema.policies.c.policy_code == schema.batches.c.policy_code,
            )
            .outerjoin(
                schema.funds_releases,
                schema.funds_releases.c.batch_id == schema.batches.c.batch_id,
            )
            .where(schema.batches.c.batch_id == batch_id)
        ).one()
        return cls(
            row.policy_code, row.policy_name, row.period, row.released_at is not None
        )


class CheckSetBuilder:
    """Routes a batch's accepted records into signed sets for its agent bank.

    A record whose account the bank confirmed for the same holder within
    ``Settings.verification_ttl_hours`` goes straight into an instruction
    set; every other record goes into an account-check set.
    """

    def __init__(
        self,
        core: GatewayCore,
        connection: Connection,
        batch_id: str,
        bank_code: str,
        data_key: DataKey,
        heading: SetHeading,
    ) -> None:
        self._core = core
        self._connection = connection
        self._batch_id = batch_id
        self._bank_code = bank_code
        self._data_key = data_key
        self._now = core.now()
        self._number = 0
        self._pending: list[exchange_pb2.AccountCheck] = []
        self._instructions = InstructionSetWriter(
            core, connection, batch_id, bank_code, data_key, heading
        )

    @property
    def current_set_id(self) -> str:
        return f"{self._batch_id}.c{self._number}"

    def add_all(self, accepted: Sequence[tuple[str, Verdict]]) -> dict[str, Routed]:
        """Route accepted records; say where each went, by record id.

        The bank's recent confirmations for the whole list are read with one
        query per ``IN_BATCH`` records.
        """
        holders = []
        for record_id, verdict in accepted:
            holder_name, holder_id = verdict.name, verdict.id_number
            if verdict.proxy_id_number:
                # Art. 13: the account belongs to the registered proxy.
                holder_name, holder_id = verdict.proxy_name, verdict.proxy_id_number
            assert verdict.account is not None
            assert verdict.amount_fen is not None
            # The bank checks the name as well as the ID number, so a
            # confirmation is reused only for the same account, ID and name.
            key = (verdict.account, self._core.tokenizer.holder(holder_id, holder_name))
            holders.append((record_id, verdict, holder_name, holder_id, key))
        confirmed = self._recently_confirmed([key for *_, key in holders])

        routes: dict[str, Routed] = {}
        for record_id, verdict, holder_name, holder_id, key in holders:
            if key in confirmed:
                set_id = self._instructions.add(
                    Payment(
                        record_id,
                        holder_name,
                        verdict.account_number,
                        verdict.amount_fen or 0,
                    )
                )
                routes[record_id] = Routed(
                    RecordState.INSTRUCTED, instruction_set_id=set_id
                )
                continue
            self._pending.append(
                exchange_pb2.AccountCheck(
                    check_id=record_id,
                    holder_name=holder_name,
                    holder_id_number=holder_id,
                    account_number=verdict.account_number,
                )
            )
            routes[record_id] = Routed(
                RecordState.CHECKING, check_set_id=self.current_set_id
            )
            if len(self._pending) >= self._core.settings.set_size:
                self._write()
        return routes

    def flush(self) -> None:
        if self._pending:
            self._write()
        self._instructions.flush()

    def _recently_confirmed(
        self, pairs: Sequence[tuple[bytes, bytes]]
    ) -> set[tuple[bytes, bytes]]:
        """The (account, holder) pairs the bank confirmed and that still hold."""
        table = schema.account_verifications
        found: set[tuple[bytes, bytes]] = set()
        accounts = list({account for account, _ in pairs})
        for start in range(0, len(accounts), IN_BATCH):
            rows = self._connection.execute(
                select(table.c.account_digest, table.c.holder_digest).where(
                    table.c.bank_code == self._bank_code,
                    table.c.account_digest.in_(accounts[start : start + IN_BATCH]),
                    table.c.expires_at > self._now,
                )
            )
            found.update((row.account_digest, row.holder_digest) for row in rows)
        return found

    def _write(self) -> None:
        message = exchange_pb2.AccountCheckSet(bank_code=self._bank_code)
        message.checks.extend(self._pending)
        write_set(
            self._core,
            self._connection,
            message,
            kind=SetKind.ACCOUNT_CHECK,
            set_id=self.current_set_id,
            batch_id=self._batch_id,
            bank_code=self._bank_code,
            item_count=len(self._pending),
            data_key=self._data_key,
        )
        self._pending = []
        self._number += 1


class InstructionSetWriter:
    """Signs payments into bounded instruction sets ``{batch}.i{n}``.

    A set is HELD until the batch's funds reached the bank (Art. 19), and
    READY at once when they already have.
    """

    def __init__(
        self,
        core: GatewayCore,
        connection: Connection,
        batch_id: str,
        bank_code: str,
        data_key: DataKey,
        heading: SetHeading,
    ) -> None:
        self._core = core
        self._connection = connection
        self._batch_id = batch_id
        self._bank_code = bank_code
        self._data_key = data_key
        self._heading = heading
        self._pending: list[Payment] = []
        self._number: int | None = None

    def add(self, payment: Payment) -> str:
        set_id = self.current_set_id
        self._pending.append(payment)
        if len(self._pending) >= self._core.settings.set_size:
            self.flush()
        return set_id

    @property
    def current_set_id(self) -> str:
        if self._number is None:
            self._number = self._connection.execute(
                select(func.count()).where(
                    schema.exchange_sets.c.batch_id == self._batch_id,
                    schema.exchange_sets.c.kind == SetKind.INSTRUCTION.value,
                )
            ).scalar_one()
        return f"{self._batch_id}.i{self._number}"

    def flush(self) -> None:
        if not self._pending:
            return
        heading = self._heading
        message = exchange_pb2.InstructionSet(
            bank_code=self._bank_code,
            policy_code=heading.policy_code,
            policy_name=heading.policy_name,
            period=heading.period,
        )
        for payment in self._pending:
            message.instructions.add(
                instruction_id=payment.record_id,
                payee_name=payment.payee_name,
                account_number=payment.account_number,
                amount_fen=payment.amount_fen,
            )
        write_set(
            self._core,
            self._connection,
            message,
            kind=SetKind.INSTRUCTION,
            set_id=self.current_set_id,
            batch_id=self._batch_id,
            bank_code=self._bank_code,
            item_count=len(self._pending),
            data_key=self._data_key,
            state=SetState.READY if heading.funds_released else SetState.HELD,
        )
        if heading.funds_released:
            deadline_store.start_payment_clocks(
                self._core, self._connection, [self.current_set_id], self._core.now()
            )
        self._pending = []
        assert self._number is not None
        self._number += 1


def write_set(
    core: GatewayCore,
    connection: Connection,
    message: Any,
    *,
    kind: SetKind,
    set_id: str,
    batch_id: str,
    bank_code: str,
    item_count: int,
    data_key: DataKey,
    state: SetState = SetState.READY,
) -> None:
    """Sign a set once and store the signed bytes, sealed."""
    now = core.now()
    envelope = seal(
        core.signer,
        message,
        audience=bank_code,
        subject_id=set_id,
        now=now,
        validity=dt.timedelta(hours=core.settings.set_validity_hours),
    )
    raw = envelope.SerializeToString()
    core.audit(
        connection,
        core.signer.identity.org,
        "set.signed",
        set_id,
        f"kind={kind.value} bank={bank_code} items={item_count} state={state.value}",
    )
    connection.execute(
        insert(schema.exchange_sets).values(
            set_id=set_id,
            kind=kind.value,
            bank_code=bank_code,
            batch_id=batch_id,
            item_count=item_count,
            sealed=data_key.seal(raw, _set_aad(set_id)),
            envelope_sha256=hashlib.sha256(raw).digest(),
            created_at=now,
            state=state.value,
            lease_id=None,
            lease_expires_at=None,
            deliveries=0,
            acknowledged_at=None,
        )
    )


# -- pulling and acknowledging -------------------------------------------------


@dataclass(frozen=True)
class Leased:
    """A set handed to one transport until ``expires``; ``envelope`` is the
    signed set, byte for byte as first signed."""

    set_id: str
    kind: SetKind
    lease_id: str
    expires: dt.datetime
    envelope: bytes


def lease_sets(
    core: GatewayCore, bank_code: str, kind: SetKind, max_sets: int
) -> list[Leased]:
    """Lease up to ``max_sets`` ready or lease-expired sets of one bank.

    A set already delivered ``Settings.max_deliveries`` times without an
    acknowledgement is not delivered again: it becomes a dead letter, which
    an operator must look at (``on_dead_letter`` counts it for the alert).
    """
    now = core.now()
    limit = max(1, min(max_sets or 1, 50))
    table = schema.exchange_sets
    leased: list[Leased] = []
    dead: list[tuple[str, str]] = []
    with core.engine.begin() as connection:
        query = (
            select(table.c.set_id, table.c.batch_id, table.c.sealed, table.c.deliveries)
            .where(
                table.c.bank_code == bank_code,
                table.c.kind == kind.value,
                (table.c.state == SetState.READY.value)
                | (
                    (table.c.state == SetState.LEASED.value)
                    & (table.c.lease_expires_at < now)
                ),
            )
            .order_by(table.c.created_at, table.c.set_id)
            .limit(limit)
        )
        if connection.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        expires = now + dt.timedelta(seconds=core.settings.lease_seconds)
        for row in connection.execute(query).all():
            if row.deliveries >= core.settings.max_deliveries:
                reason = f"deliveries={row.deliveries}"
                _bury(core, connection, row.set_id, bank_code, kind, reason)
                dead.append((row.set_id, reason))
                continue
            lease_id = secrets.token_hex(16)
            connection.execute(
                update(table)
                .where(table.c.set_id == row.set_id)
                .values(
                    state=SetState.LEASED.value,
                    lease_id=lease_id,
                    lease_expires_at=expires,
                    deliveries=table.c.deliveries + 1,
                )
            )
            raw = core.data_key(connection, row.batch_id).open(
                row.sealed, _set_aad(row.set_id)
            )
            leased.append(Leased(row.set_id, kind, lease_id, expires, raw))
            core.audit(
                connection,
                bank_code,
                "set.leased",
                row.set_id,
                f"kind={kind.value} delivery={row.deliveries + 1}",
            )
            _logger.info("set leased", extra={"set_id": row.set_id, "bank": bank_code})
    for set_id, reason in dead:
        _alert_dead_letter(core, set_id, bank_code, kind, reason)
    return leased


def dead_letter(
    core: GatewayCore, set_id: str, bank_code: str, kind: SetKind, reason: str
) -> None:
    """Give up on delivering a set: an operator must handle it by hand.

    For a set the bank's transport cannot carry at all, for example an
    instruction file whose payee name the bank's character set lacks.
    ``reason`` is a safe message; it never holds personal data.
    """
    with core.engine.begin() as connection:
        _bury(core, connection, set_id, bank_code, kind, reason)
    _alert_dead_letter(core, set_id, bank_code, kind, reason)


def _bury(
    core: GatewayCore,
    connection: Connection,
    set_id: str,
    bank_code: str,
    kind: SetKind,
    reason: str,
) -> None:
    """Mark a set a dead letter, in the caller's transaction, and audit it."""
    table = schema.exchange_sets
    connection.execute(
        update(table)
        .where(table.c.set_id == set_id, table.c.bank_code == bank_code)
        .values(state=SetState.DEAD.value, lease_id=None)
    )
    core.audit(
        connection,
        core.signer.identity.org,
        "set.dead_letter",
        set_id,
        f"kind={kind.value} reason={reason}",
    )


def _alert_dead_letter(
    core: GatewayCore, set_id: str, bank_code: str, kind: SetKind, reason: str
) -> None:
    """Count and log a dead letter, once its transaction has committed."""
    core.on_dead_letter(bank_code, kind.value)
    _logger.error(
        "ALERT: set given up; dead letter",
        extra={"set_id": set_id, "bank": bank_code, "reason": reason},
    )


def pull_sets(
    core: GatewayCore, caller: Identity, kind: SetKind, max_sets: int
) -> list[exchange_pb2.LeasedSet]:
    """Lease up to ``max_sets`` ready or lease-expired sets to the calling bank."""
    _require_bank(caller)
    pulled = []
    for leased in lease_sets(core, caller.org, kind, max_sets):
        leased_set = exchange_pb2.LeasedSet(lease_id=leased.lease_id)
        leased_set.set.ParseFromString(leased.envelope)
        leased_set.lease_expires_at.FromDatetime(leased.expires)
        pulled.append(leased_set)
    return pulled


def acknowledge(
    core: GatewayCore, caller: Identity, set_id: str, lease_id: str
) -> dt.datetime:
    """Record that the bank holds the set durably; no redelivery after this."""
    _require_bank(caller)
    if not lease_id:
        raise PreconditionError("the lease is not held: pull the set again")
    return acknowledge_set(core, caller.org, set_id, lease_id)


def acknowledge_set(
    core: GatewayCore,
    bank_code: str,
    set_id: str,
    lease_id: str | None,
    *,
    kind: SetKind | None = None,
) -> dt.datetime:
    """Mark a set acknowledged by its bank.

    ``lease_id`` must be the current lease when given. A file transport
    passes None: the bank acknowledges the file it holds, whichever
    delivery wrote it, and the signed acknowledgement names the file's
    digest instead.
    """
    now = core.now()
    table = schema.exchange_sets
    with core.engine.begin() as connection:
        row = connection.execute(
            select(table).where(
                table.c.set_id == set_id, table.c.bank_code == bank_code
            )
        ).one_or_none()
        if row is None or (kind is not None and row.kind != kind.value):
            raise NotFoundError("no such set for this bank")
        if row.acknowledged_at is not None:
            earlier: dt.datetime = row.acknowledged_at
            return earlier
        if row.deliveries == 0 or (lease_id is not None and row.lease_id != lease_id):
            raise PreconditionError("the lease is not held: pull the set again")
        # A set can be DONE before its acknowledgement arrives: another puller
        # of the same bank reported its results first. The acknowledgement is
        # still recorded; the state stays DONE.
        state = SetState.DONE if row.state == SetState.DONE.value else SetState.ACKED
        connection.execute(
            update(table)
            .where(table.c.set_id == set_id)
            .values(state=state.value, acknowledged_at=now)
        )
        core.audit(connection, bank_code, "set.acknowledged", set_id)
    _logger.info("set acknowledged", extra={"set_id": set_id, "bank": bank_code})
    return now


# -- answers from the bank -----------------------------------------------------


def _open_bank_envelope(
    core: GatewayCore,
    caller: Identity,
    envelope: envelope_pb2.SignedEnvelope,
    kind: type,
) -> Opened[Any]:
    _require_bank(caller)
    opened: Opened[Any] = open_envelope(
        envelope, kind, trust=core.trust, audience=GATEWAY_AUDIENCE, now=core.now()
    )
    if opened.signer != caller:
        raise PermissionDeniedError("the answer is signed by another organisation")
    return opened


def _evidence_id(
    caller: Identity, subject_id: str, envelope: envelope_pb2.SignedEnvelope
) -> str:
    """Evidence is keyed by sender, subject and payload digest.

    A bank that re-signs the same answers after a crash sends new bytes under
    the same subject; both are kept as evidence, and the per-result checks
    decide whether they agree.
    """
    digest = hashlib.sha256(envelope.payload).hexdigest()[:32]
    return f"{caller.org}/{subject_id[:56]}/{digest}"


def _store_evidence(
    core: GatewayCore,
    connection: Connection,
    caller: Identity,
    kind: SetKind,
    envelope: envelope_pb2.SignedEnvelope,
    evidence_id: str,
    now: dt.datetime,
) -> bool:
    """Keep the signed answer; True when the identical answer was already held."""
    payload_sha256 = hashlib.sha256(envelope.payload).digest()
    existing = connection.execute(
        select(schema.evidence.c.payload_sha256).where(
            schema.evidence.c.set_id == evidence_id
        )
    ).one_or_none()
    if existing is not None:
        if existing.payload_sha256 != payload_sha256:
            core.on_conflicting_result(caller.org)
            _logger.error(
                "ALERT: conflicting answer under a known id",
                extra={"evidence_id": evidence_id, "bank": caller.org},
            )
            raise ConflictError("this answer id was already used for other content")
        return True
    connection.execute(
        insert(schema.evidence).values(
            set_id=evidence_id,
            kind=kind.value,
            bank_code=caller.org,
            payload=envelope.payload,
            payload_sha256=payload_sha256,
            signature=envelope.signature,
            signer_certificate=envelope.signer_certificate,
            received_at=now,
        )
    )
    return False


def post_account_check_results(
    core: GatewayCore, caller: Identity, envelope: envelope_pb2.SignedEnvelope
) -> exchange_pb2.Receipt:
    opened = _open_bank_envelope(
        core, caller, envelope, exchange_pb2.AccountCheckResultSet
    )
    answer: exchange_pb2.AccountCheckResultSet = opened.message
    now = core.now()
    evidence_id = _evidence_id(caller, answer.header.subject_id, envelope)
    sets = schema.exchange_sets

    with core.engine.begin() as connection:
        check_set = connection.execute(
            select(sets).where(
                sets.c.set_id == answer.check_set_id,
                sets.c.bank_code == caller.org,
                sets.c.kind == SetKind.ACCOUNT_CHECK.value,
            )
        ).one_or_none()
        if check_set is None:
            raise NotFoundError("no such account-check set for this bank")
        if check_set.deliveries == 0:
            raise PreconditionError("the set was never delivered")
        if _store_evidence(
            core, connection, caller, SetKind.ACCOUNT_CHECK, envelope, evidence_id, now
        ):
            return _receipt(
                answer.header.subject_id, envelope, 0, len(answer.results), now
            )

        checked = _checked_in(connection, [r.check_id for r in answer.results])
        confirmed: dict[str, int] = {}  # record id -> amount in fen
        refused: dict[str, ReasonCode] = {}
        duplicates = 0
        for result in answer.results:
            state, in_set, amount_fen = checked.get(result.check_id, (None, None, 0))
            if in_set != check_set.set_id:
                raise InvalidArgumentError("an answer names a check outside the set")
            if result.status not in CHECK_STATUS_REASONS:
                raise InvalidArgumentError("an answer has no valid status")
            if state != RecordState.CHECKING:
                duplicates += 1
                continue
            reason = CHECK_STATUS_REASONS[result.status]
            if reason is None:
                confirmed[result.check_id] = amount_fen
            else:
                refused[result.check_id] = reason

        for rid, reason in refused.items():
            _set_state(
                connection, [rid], RecordState.REJECTED, now, reasons=reason.value
            )
        _release_claims(connection, list(refused))
        if confirmed:
            checks = _checks_of(core, connection, check_set)
            _remember_confirmations(core, connection, check_set, checks, confirmed, now)
            _instruct(core, connection, check_set, checks, confirmed, now)
        _maybe_finish_set(
            connection, check_set.set_id, RecordState.CHECKING, "check_set_id"
        )
        refresh_batch_state(connection, check_set.batch_id, now)
        core.audit(
            connection,
            caller.org,
            "checks.answered",
            check_set.set_id,
            f"confirmed={len(confirmed)} refused={len(refused)} "
            f"repeated={duplicates} evidence={evidence_id}",
        )
    accepted = len(confirmed) + len(refused)
    _logger.info(
        "account checks answered",
        extra={"set_id": check_set.set_id, "bank": caller.org, "answers": accepted},
    )
    return _receipt(answer.header.subject_id, envelope, accepted, duplicates, now)


def _checks_of(
    core: GatewayCore, connection: Connection, check_set: Any
) -> exchange_pb2.AccountCheckSet:
    """The account checks of a stored set, opened from its sealed envelope."""
    data_key = core.data_key(connection, check_set.batch_id)
    raw = data_key.open(check_set.sealed, _set_aad(check_set.set_id))
    return exchange_pb2.AccountCheckSet.FromString(
        envelope_pb2.SignedEnvelope.FromString(raw).payload
    )


def _instruct(
    core: GatewayCore,
    connection: Connection,
    check_set: Any,
    checks: exchange_pb2.AccountCheckSet,
    confirmed: Mapping[str, int],
    now: dt.datetime,
) -> None:
    """Turn confirmed checks (record id -> amount) into signed instruction sets."""
    data_key = core.data_key(connection, check_set.batch_id)
    by_id = {c.check_id: c for c in checks.checks}

    writer = InstructionSetWriter(
        core,
        connection,
        check_set.batch_id,
        check_set.bank_code,
        data_key,
        SetHeading.of_batch(connection, check_set.batch_id),
    )
    by_set: dict[str, list[str]] = {}
    for rid, amount_fen in confirmed.items():
        check = by_id[rid]
        set_id = writer.add(
            Payment(rid, check.holder_name, check.account_number, amount_fen)
        )
        by_set.setdefault(set_id, []).append(rid)
    writer.flush()
    for set_id, ids in by_set.items():
        bulk.update_in(
            connection,
            schema.records,
            {
                "state": RecordState.INSTRUCTED.value,
                "instruction_set_id": set_id,
                "updated_at": now,
            },
            "record_id",
            ids,
        )


def _remember_confirmations(
    core: GatewayCore,
    connection: Connection,
    check_set: Any,
    checks: exchange_pb2.AccountCheckSet,
    confirmed: Iterable[str],
    now: dt.datetime,
) -> None:
    """Keep the bank's confirmations, keyed by account and holder digests."""
    wanted = set(confirmed)
    table = schema.account_verifications
    expires = now + dt.timedelta(hours=core.settings.verification_ttl_hours)
    keys = [
        (
            check_set.bank_code,
            core.tokenizer.account(check.account_number),
            core.tokenizer.holder(check.holder_id_number, check.holder_name),
        )
        for check in checks.checks
        if check.check_id in wanted
    ]
    # A newer confirmation of the same account and holder replaces the older.
    bulk.upsert_rows(
        connection,
        table,
        ("bank_code", "account_digest", "holder_digest"),
        [
            {
                "bank_code": bank,
                "account_digest": account,
                "holder_digest": holder,
                "verified_at": now,
                "expires_at": expires,
            }
            for bank, account, holder in keys
        ],
    )


def post_results(
    core: GatewayCore, caller: Identity, envelope: envelope_pb2.SignedEnvelope
) -> exchange_pb2.Receipt:
    opened: Opened[Any] = _open_bank_envelope(
        core, caller, envelope, exchange_pb2.ResultSet
    )
    result_set: exchange_pb2.ResultSet = opened.message
    return record_results(
        core, caller, result_set.results, result_set.header.subject_id, envelope
    )


def record_results(
    core: GatewayCore,
    caller: Identity,
    results: Sequence[exchange_pb2.Result],
    subject_id: str,
    evidence: envelope_pb2.SignedEnvelope,
) -> exchange_pb2.Receipt:
    """Apply a bank's verified results and keep what it signed as evidence.

    ``evidence`` is the bank's signed envelope: the ResultSet message for
    gRPC, or the result file's bytes and detached signature for a file
    connector. Either way its signature has been verified and its signer is
    ``caller``.
    """
    now = core.now()
    envelope = evidence
    evidence_id = _evidence_id(caller, subject_id, envelope)

    try:
        with core.engine.begin() as connection:
            if _store_evidence(
                core,
                connection,
                caller,
                SetKind.INSTRUCTION,
                envelope,
                evidence_id,
                now,
            ):
                return _receipt(subject_id, envelope, 0, len(results), now)
            ids = [r.instruction_id for r in results]
            states = _record_states(connection, ids)
            delivered = _delivered_instruction_sets(
                connection, caller, {set_id for _, set_id in states.values()}
            )
            known = _known_results(connection, ids)

            accepted = duplicates = 0
            touched_batches: set[str] = set()
            returned: list[tuple[str, str, str, dt.datetime]] = []
            new_results: list[dict[str, object]] = []
            transitions: dict[tuple[RecordState, str], list[str]] = {}
            released: list[str] = []
            for result in results:
                new_state = RESULT_STATES.get(result.status)
                if new_state is None:
                    raise InvalidArgumentError("a result has no valid status")
                state, set_id = states.get(result.instruction_id, (None, None))
                if state is None or set_id is None or set_id not in delivered:
                    raise NotFoundError(
                        "a result names an instruction not delivered to this bank"
                    )
                previous = known.get((result.instruction_id, new_state.value))
                if previous is not None:
                    if previous != result.bank_reference:
                        _alert_conflict(core, caller, result.instruction_id)
                    duplicates += 1
                    continue
                if new_state not in _ALLOWED_TRANSITIONS.get(state, set()):
                    _alert_conflict(core, caller, result.instruction_id)
                if new_state is not RecordState.PAID and not result.reason_code:
                    raise InvalidArgumentError(
                        "a failed or returned result needs a reason code"
                    )
                new_results.append(
                    {
                        "instruction_id": result.instruction_id,
                        "status": new_state.value,
                        "reason_code": result.reason_code,
                        "bank_reference": result.bank_reference[:64],
                        "completed_at": result.completed_at.ToDatetime(tzinfo=dt.UTC),
                        "result_set_id": evidence_id,
                        "received_at": now,
                    }
                )
                reasons = "" if new_state is RecordState.PAID else result.reason_code
                transitions.setdefault((new_state, reasons), []).append(
                    result.instruction_id
                )
                if new_state in RELEASED_STATES:
                    released.append(result.instruction_id)
                if new_state is RecordState.RETURNED:
                    returned.append(
                        (
                            result.instruction_id,
                            caller.org,
                            delivered[set_id],
                            result.completed_at.ToDatetime(tzinfo=dt.UTC),
                        )
                    )
                states[result.instruction_id] = (new_state, set_id)
                known[(result.instruction_id, new_state.value)] = result.bank_reference[
                    :64
                ]
                touched_batches.add(delivered[set_id])
                accepted += 1

            # All checked: now write, a statement per kind of change.
            bulk.insert_rows(connection, schema.results, new_results)
            for (new_state, reasons), record_ids in transitions.items():
                _set_state(connection, record_ids, new_state, now, reasons=reasons)
            for start in range(0, len(released), IN_BATCH):
                _release_claims(connection, released[start : start + IN_BATCH])

            touched_sets = {states[i][1] for i in ids if states.get(i)} - {None}
            settled = [
                set_id
                for set_id in touched_sets
                if set_id is not None
                and _maybe_finish_set(
                    connection, set_id, RecordState.INSTRUCTED, "instruction_set_id"
                )
            ]
            deadline_store.record_results(core, connection, settled, returned, now)
            for batch_id in touched_batches:
                refresh_batch_state(connection, batch_id, now)
            core.audit(
                connection,
                caller.org,
                "results.recorded",
                evidence_id,
                f"accepted={accepted} repeated={duplicates} "
                f"returned={len(returned)} sets={len(touched_sets)}",
            )
    except IntegrityError as exc:
        # Two pullers of one bank posted the same results at the same moment
        # and the other transaction recorded them first: nothing of this one
        # was stored; sent again, it is recognised as a repeat.
        raise ConcurrentChangeError(
            "the same results were being recorded at the same time; send again"
        ) from exc
    _logger.info(
        "results received",
        extra={
            "evidence_id": evidence_id,
            "accepted": accepted,
            "duplicates": duplicates,
        },
    )
    return _receipt(subject_id, envelope, accepted, duplicates, now)


def _alert_conflict(core: GatewayCore, caller: Identity, instruction_id: str) -> None:
    core.on_conflicting_result(caller.org)
    _logger.error(
        "ALERT: conflicting result refused",
        extra={"instruction_id": instruction_id, "bank": caller.org},
    )
    raise PreconditionError(
        f"result for instruction {instruction_id} contradicts the recorded one"
    )


# -- shared helpers ------------------------------------------------------------


def _require_bank(caller: Identity) -> None:
    if caller.role is not Role.BANK:
        raise PermissionDeniedError("only an agent bank may do this")


def _record_states(
    connection: Connection, record_ids: Iterable[str]
) -> dict[str, tuple[RecordState | None, str | None]]:
    found: dict[str, tuple[RecordState | None, str | None]] = {}
    for record_id, state_name, check_set_id, instruction_set_id in bulk.select_in(
        connection,
        schema.records,
        ("record_id", "state", "check_set_id", "instruction_set_id"),
        "record_id",
        list(record_ids),
    ):
        state = RecordState(state_name)
        set_id = check_set_id if state is RecordState.CHECKING else None
        found[record_id] = (state, instruction_set_id or set_id)
    return found


def _checked_in(
    connection: Connection, record_ids: Sequence[str]
) -> dict[str, tuple[RecordState, str | None, int]]:
    """Record id -> (state, the account-check set it was checked in, amount).

    Unlike ``_record_states``, the check set stays known after the record
    moved on, so an answer repeated after the first one was applied is
    recognised as a repeat, not as a check outside the set.
    """
    return {
        record_id: (RecordState(state), check_set_id, amount_fen)
        for record_id, state, check_set_id, amount_fen in bulk.select_in(
            connection,
            schema.records,
            ("record_id", "state", "check_set_id", "amount_fen"),
            "record_id",
            record_ids,
        )
    }


def _delivered_instruction_sets(
    connection: Connection, caller: Identity, set_ids: Iterable[str | None]
) -> dict[str, str]:
    """Instruction set id -> batch id, for those of ``set_ids`` that are
    instruction sets delivered to the caller.

    Looked up by key, not joined from the records: a join lets the planner
    walk every record of every set of the bank, a whole batch per result set.
    """
    sets = schema.exchange_sets
    wanted = sorted(set_id for set_id in set(set_ids) if set_id is not None)
    delivered: dict[str, str] = {}
    for start in range(0, len(wanted), IN_BATCH):
        rows = connection.execute(
            select(sets.c.set_id, sets.c.batch_id).where(
                sets.c.set_id.in_(wanted[start : start + IN_BATCH]),
                sets.c.bank_code == caller.org,
                sets.c.kind == SetKind.INSTRUCTION.value,
                sets.c.deliveries > 0,
            )
        )
        delivered.update({row.set_id: row.batch_id for row in rows})
    return delivered


def _known_results(
    connection: Connection, ids: Sequence[str]
) -> dict[tuple[str, str], str]:
    return {
        (instruction_id, status): bank_reference
        for instruction_id, status, bank_reference in bulk.select_in(
            connection,
            schema.results,
            ("instruction_id", "status", "bank_reference"),
            "instruction_id",
            ids,
        )
    }


def _set_state(
    connection: Connection,
    record_ids: Sequence[str],
    state: RecordState,
    now: dt.datetime,
    *,
    reasons: str,
) -> None:
    bulk.update_in(
        connection,
        schema.records,
        {"state": state.value, "reasons": reasons, "updated_at": now},
        "record_id",
        record_ids,
    )


def _release_claims(connection: Connection, record_ids: Sequence[str]) -> None:
    if record_ids:
        connection.execute(
            delete(schema.claims).where(schema.claims.c.record_id.in_(record_ids))
        )


def _maybe_finish_set(
    connection: Connection, set_id: str, open_state: RecordState, column: str
) -> bool:
    """Mark the set DONE when none of its records is still ``open_state``;
    say whether it is."""
    records = schema.records
    still_open = connection.execute(
        select(func.count()).where(
            records.c[column] == set_id, records.c.state == open_state.value
        )
    ).scalar_one()
    if still_open == 0:
        connection.execute(
            update(schema.exchange_sets)
            .where(schema.exchange_sets.c.set_id == set_id)
            .values(state=SetState.DONE.value)
        )
    return still_open == 0


def refresh_batch_state(
    connection: Connection, batch_id: str, now: dt.datetime
) -> None:
    """Derive the batch's state from its records; note when it closed.

    ``closed_at`` is set once, when the last record first reaches a final
    state: the retention period runs from there.
    """
    # Existence, not counts: each is one probe of an index, however large
    # the batch, so refreshing after every set stays cheap.
    records, sets = schema.records, schema.exchange_sets
    still_open = connection.execute(
        select(records.c.record_id)
        .where(
            records.c.batch_id == batch_id,
            records.c.state.in_(
                [s.value for s in RecordState if s not in FINAL_STATES]
            ),
        )
        .limit(1)
    ).first()
    instructed = connection.execute(
        select(sets.c.set_id)
        .where(sets.c.batch_id == batch_id, sets.c.kind == SetKind.INSTRUCTION.value)
        .limit(1)
    ).first()
    state = (
        "CLOSED"
        if still_open is None
        else ("IN_PAYMENT" if instructed is not None else "VALIDATED")
    )
    batches = schema.batches
    connection.execute(
        update(batches).where(batches.c.batch_id == batch_id).values(state=state)
    )
    if state == "CLOSED":
        connection.execute(
            update(batches)
            .where(batches.c.batch_id == batch_id, batches.c.closed_at.is_(None))
            .values(closed_at=now)
        )


def _receipt(
    set_id: str,
    envelope: envelope_pb2.SignedEnvelope,
    accepted: int,
    duplicates: int,
    now: dt.datetime,
) -> exchange_pb2.Receipt:
    receipt = exchange_pb2.Receipt(
        set_id=set_id,
        payload_sha256=hashlib.sha256(envelope.payload).digest(),
        accepted=accepted,
        duplicates=duplicates,
    )
    receipt.received_at.FromDatetime(now)
    return receipt
