"""Receiving a department's batch: verify, check, validate, seal, store.

The order of the steps is the security argument:
  1. The stream opens with a signed manifest. It is verified before anything
     else is read, and its signer must be the caller on the TLS connection.
  2. The manifest must fit the caller and the policy list: the department
     submits only for its own county and for policies it owns (Art. 5-6),
     with a period the policy's rhythm allows.
  3. Each chunk is hashed on arrival and compared with the digest the manifest
     declared for its position, *before* it is parsed. Chunks out of order,
     repeated, missing or altered are refused.
  4. After the last chunk, the record count and the total amount must equal
     what the manifest declared.
  5. Idempotency is judged on the records' content digest, never on envelope
     bytes: the same content re-signed is the same batch, and a batch id
     replayed with other content is refused.
  6. Everything is stored in one transaction: the manifest as signed, the
     chunk bytes as verified (sealed with the batch's data key), one row per
     record with its verdict, and the account-check sets for the agent bank.
     Any failure leaves the store as it was.

Records are handled chunk by chunk, so memory stays flat in the batch size.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from gateway import exchange, retention
from gateway.core import GATEWAY_AUDIENCE, GatewayCore
from gateway.envelope import Opened, open_envelope
from gateway.errors import (
    ChunkError,
    ConcurrentChangeError,
    ConflictError,
    InvalidArgumentError,
    ManifestMismatchError,
    NotFoundError,
    PermissionDeniedError,
)
from gateway.lookups import StoreLookups
from gateway.normalize import parse_amount_fen
from gateway.queries import reasons_of
from gateway.reasons import ReasonCode
from gateway.rules import DECEASED_LIST, BatchChecker, PolicyRules, Verdict
from gateway.sealing import DataKey
from gateway.states import BATCH_STATES, RELEASED_STATES, RecordState
from gateway.store import bulk, schema
from keys.identity import Identity, Role
from ykt.v1 import batch_pb2, envelope_pb2, services_pb2

_logger = logging.getLogger(__name__)

BATCH_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
YEAR_PERIOD = re.compile(r"^20[0-9]{2}$")
MONTH_PERIOD = re.compile(r"^20[0-9]{2}-(0[1-9]|1[0-2])$")
MAX_CHUNKS = 100_000
MAX_RECORDS_PER_CHUNK = 50_000


@dataclass(frozen=True)
class Policy:
    code: str
    name: str
    department: str
    period_kind: str
    rules: PolicyRules


def record_id(batch_id: str, row: int) -> str:
    return f"{batch_id}.r{row}"


class ContentDigest:
    """SHA-256 over a canonical, length-prefixed encoding of the records."""

    FIELDS = (
        "name",
        "id_number",
        "account_number",
        "amount",
        "bank_name",
        "proxy_name",
        "proxy_id_number",
        "corrects_record_id",
    )

    def __init__(self, manifest: batch_pb2.BatchManifest) -> None:
        self._hash = hashlib.sha256(b"ykt-batch-content-v1\n")
        for value in (manifest.county, manifest.department, manifest.policy_code):
            self._add(value)
        self._add(manifest.period)

    def _add(self, value: str) -> None:
        data = value.encode("utf-8")
        self._hash.update(len(data).to_bytes(4, "big") + data)

    def add(self, record: batch_pb2.PaymentRecord) -> None:
        self._add(str(record.row))
        for name in self.FIELDS:
            self._add(getattr(record, name))

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


@dataclass(frozen=True)
class OpenedManifest:
    """A verified manifest that fits its caller and the policy list."""

    envelope: envelope_pb2.SignedEnvelope
    opened: Opened[batch_pb2.BatchManifest]
    policy: Policy
    bank_code: str

    @property
    def manifest(self) -> batch_pb2.BatchManifest:
        return self.opened.message

    @property
    def batch_id(self) -> str:
        return self.manifest.header.subject_id


def _open_manifest(
    core: GatewayCore,
    caller: Identity,
    first: services_pb2.SubmitBatchRequest | services_pb2.ValidateBatchRequest | None,
    *,
    dry_run: bool,
) -> OpenedManifest:
    """Steps 1 and 2: a signed manifest, signed by the caller, that fits."""
    if first is None or first.WhichOneof("item") != "manifest":
        raise InvalidArgumentError("the stream must begin with a signed manifest")
    opened = open_envelope(
        first.manifest,
        batch_pb2.BatchManifest,
        trust=core.trust,
        audience=GATEWAY_AUDIENCE,
        now=core.now(),
    )
    if opened.signer != caller:
        raise PermissionDeniedError("the manifest is signed by another organisation")
    manifest = opened.message

    # A dry-run manifest can never be replayed as a submission, nor the reverse.
    if manifest.dry_run != dry_run:
        raise InvalidArgumentError(
            "a dry-run manifest goes to ValidateBatch, any other to SubmitBatch"
        )
    if not BATCH_ID_PATTERN.match(manifest.header.subject_id):
        raise InvalidArgumentError("batch id is malformed")
    with core.engine.connect() as connection:
        policy = _authorised_policy(connection, caller, manifest)
        bank_code = _agent_bank(connection, manifest.county, policy.code)
    _check_declarations(core, manifest)
    return OpenedManifest(first.manifest, opened, policy, bank_code)


def submit_batch(
    core: GatewayCore,
    caller: Identity,
    stream: Iterator[services_pb2.SubmitBatchRequest],
) -> services_pb2.SubmitBatchResponse:
    # 1-2. A signed manifest that fits the caller and the policy list.
    head = _open_manifest(core, caller, next(stream, None), dry_run=False)
    manifest = head.manifest
    batch_id = head.batch_id
    with core.engine.connect() as connection:
        existing = connection.execute(
            select(schema.batches).where(schema.batches.c.batch_id == batch_id)
        ).one_or_none()

    chunks = _verified_chunks(stream, manifest)

    # 5a. A known batch id: compare content, store nothing.
    if existing is not None:
        digest = ContentDigest(manifest)
        count = total = 0
        for _index, _raw, records in chunks:
            for record in records.records:
                digest.add(record)
                count += 1
                total += _declared_amount(record.amount)
        _check_totals(manifest, count, total)
        if digest.hexdigest() != existing.content_digest:
            raise ConflictError("batch id was already used for different content")
        return _response_for_existing(core, batch_id)

    # 3-6. Verify, validate, seal and store in one transaction.
    with core.engine.connect() as connection:
        transaction = connection.begin()
        try:
            response, data_key = _store_new_batch(
                core, connection, caller, head, chunks
            )
        except IntegrityError as exc:
            # Another replica claimed one of these people for the same policy
            # and period at the same moment (or stored the same batch id).
            transaction.rollback()
            raise ConcurrentChangeError(
                "another submission claimed the same payments at the same time; "
                "nothing was stored: submit again"
            ) from exc
        except BaseException:
            transaction.rollback()
            raise
        if response.already_submitted:
            transaction.rollback()
            return _response_for_existing(core, response.batch_id)
        transaction.commit()
    core.remember_data_key(batch_id, data_key)
    _logger.info(
        "batch stored", extra={"batch_id": batch_id, "records": response.record_count}
    )
    return response


def validate_batch(
    core: GatewayCore,
    caller: Identity,
    stream: Iterator[services_pb2.ValidateBatchRequest],
) -> Iterator[services_pb2.ValidateBatchResponse]:
    """A dry run: every non-bank check, one verdict per record, nothing stored.

    The registry and the reference lists stay on the gateway: the caller
    learns only each record's verdict, which it would get by submitting.
    The transaction is read-only in effect and always rolled back.
    """
    head = _open_manifest(core, caller, next(stream, None), dry_run=True)
    manifest = head.manifest
    count = total = 0
    with core.engine.connect() as connection:
        lookups = StoreLookups(
            connection,
            core.tokenizer,
            policy_code=head.policy.code,
            period=manifest.period,
        )
        checker = BatchChecker(
            head.policy.rules, manifest.period, lookups, core.now().date()
        )
        corrections = CorrectionChecker(connection, caller, head.policy, manifest)
        try:
            for _index, _raw, records in _verified_chunks(stream, manifest):
                lookups.prefetch(_people_of(records), _list_names(head.policy))
                for record in records.records:
                    count += 1
                    total += _declared_amount(record.amount)
                    verdict = _check_record(checker, corrections, record)
                    yield services_pb2.ValidateBatchResponse(
                        row=record.row,
                        accepted=verdict.accepted,
                        reasons=reasons_of(
                            verdict.reasons,
                            id_stored_as_number=verdict.id_stored_as_number,
                        ),
                    )
            _check_totals(manifest, count, total)
        finally:
            connection.rollback()


def _check_record(
    checker: BatchChecker,
    corrections: CorrectionChecker,
    record: batch_pb2.PaymentRecord,
) -> Verdict:
    verdict = checker.check(
        name=record.name,
        id_number=record.id_number,
        account_number=record.account_number,
        amount=record.amount,
        proxy_name=record.proxy_name,
        proxy_id_number=record.proxy_id_number,
    )
    if record.corrects_record_id:
        verdict = corrections.check(record.corrects_record_id, verdict, checker)
    return verdict


class CorrectionChecker:
    """Art. 22: a correction names a record it may correct.

    A record may be corrected when it belongs to the same department, policy
    and period, and was rejected, failed or returned: it paid nobody, or its
    money came back. A paid or still pending record cannot be corrected,
    and a record is corrected at most once at a time: a second correction is
    refused while the first is accepted, pending or paid.
    """

    def __init__(
        self,
        connection: Connection,
        caller: Identity,
        policy: Policy,
        manifest: batch_pb2.BatchManifest,
    ) -> None:
        self._connection = connection
        self._caller = caller
        self._policy = policy
        self._period = manifest.period
        self._corrected_here: set[str] = set()

    def check(self, target_id: str, verdict: Verdict, checker: BatchChecker) -> Verdict:
        if self._correctable(target_id) and target_id not in self._corrected_here:
            if verdict.accepted:
                self._corrected_here.add(target_id)
            return verdict
        if verdict.accepted:
            checker.forget(verdict)
        return verdict.refused_for(ReasonCode.CORRECTION_INVALID)

    def _correctable(self, target_id: str) -> bool:
        records, batches = schema.records, schema.batches
        target = self._connection.execute(
            select(records.c.state, batches.c.department_org)
            .join(batches, batches.c.batch_id == records.c.batch_id)
            .where(
                records.c.record_id == target_id,
                batches.c.policy_code == self._policy.code,
                batches.c.period == self._period,
            )
        ).one_or_none()
        if target is None or target.department_org != self._caller.org:
            return False
        if RecordState(target.state) not in RELEASED_STATES:
            return False
        active = self._connection.execute(
            select(func.count()).where(
                records.c.corrects_record_id == target_id,
                records.c.state.not_in([s.value for s in RELEASED_STATES]),
            )
        ).scalar_one()
        return active == 0


def _authorised_policy(
    connection: Connection, caller: Identity, manifest: batch_pb2.BatchManifest
) -> Policy:
    if caller.role is not Role.DEPARTMENT:
        raise PermissionDeniedError("only a department submits batches")
    if caller.org != f"{manifest.county}-{manifest.department}":
        raise PermissionDeniedError("a department submits only for its own county")
    row = connection.execute(
        select(schema.policies).where(
            schema.policies.c.policy_code == manifest.policy_code
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError("no such policy in the policy list")
    if row.department != manifest.department:
        raise PermissionDeniedError("the policy belongs to another department")
    pattern = YEAR_PERIOD if row.period_kind == "year" else MONTH_PERIOD
    if not pattern.match(manifest.period):
        raise InvalidArgumentError(f"the policy is paid per {row.period_kind}")
    rules = PolicyRules(
        policy_code=row.policy_code,
        max_amount_fen=row.max_amount_fen,
        requires_list=row.requires_list or None,
        excludes_list=row.excludes_list or None,
    )
    return Policy(
        row.policy_code, row.policy_name, row.department, row.period_kind, rules
    )


def _agent_bank(connection: Connection, county: str, policy_code: str) -> str:
    row = connection.execute(
        select(schema.agent_banks.c.bank_code).where(
            schema.agent_banks.c.county == county,
            schema.agent_banks.c.policy_code == policy_code,
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError("the county has chosen no agent bank for this policy")
    return str(row.bank_code)


def _check_declarations(core: GatewayCore, manifest: batch_pb2.BatchManifest) -> None:
    if manifest.record_count > core.settings.max_records:
        raise InvalidArgumentError("the batch declares more records than allowed")
    if not 0 < len(manifest.chunk_sha256) <= MAX_CHUNKS:
        raise InvalidArgumentError("the manifest declares no chunks or too many")
    if any(len(d) != 32 for d in manifest.chunk_sha256):
        raise InvalidArgumentError("a declared chunk digest is not SHA-256")


def _verified_chunks(
    stream: Iterator[
        services_pb2.SubmitBatchRequest | services_pb2.ValidateBatchRequest
    ],
    manifest: batch_pb2.BatchManifest,
) -> Iterator[tuple[int, bytes, batch_pb2.PaymentRecordList]]:
    """Yield chunks in order, each checked against the manifest before parsing."""
    declared = manifest.chunk_sha256
    expected_index = 0
    last_row = 0
    for request in stream:
        if request.WhichOneof("item") != "chunk":
            raise ChunkError("only one manifest may open a batch")
        chunk = request.chunk
        if chunk.index != expected_index:
            raise ChunkError(
                f"chunk {chunk.index} arrived where {expected_index} was due"
            )
        if expected_index >= len(declared):
            raise ChunkError("more chunks arrived than the manifest declares")
        if hashlib.sha256(chunk.records).digest() != declared[expected_index]:
            raise ChunkError(
                f"chunk {expected_index} does not match its declared digest"
            )
        records = batch_pb2.PaymentRecordList()
        try:
            records.ParseFromString(chunk.records)
        except (DecodeError, RecursionError) as exc:
            raise ChunkError(f"chunk {expected_index} does not parse") from exc
        if len(records.records) > MAX_RECORDS_PER_CHUNK:
            raise ChunkError(f"chunk {expected_index} carries too many records")
        for record in records.records:
            if record.row <= last_row:
                raise ChunkError(f"row {record.row} is out of order or repeated")
            last_row = record.row
        yield expected_index, chunk.records, records
        expected_index += 1
    if expected_index != len(declared):
        raise ChunkError("fewer chunks arrived than the manifest declares")


REJECTED = exchange.Routed(RecordState.REJECTED)


def _people_of(records: batch_pb2.PaymentRecordList) -> list[str]:
    """The ID numbers a chunk's checks will look up: beneficiaries, proxies."""
    return [r.id_number for r in records.records] + [
        r.proxy_id_number for r in records.records if r.proxy_id_number
    ]


def _list_names(policy: Policy) -> list[str]:
    """The reference lists the policy's checks consult."""
    names = [DECEASED_LIST, policy.rules.requires_list, policy.rules.excludes_list]
    return [name for name in names if name]


def _declared_amount(text: str) -> int:
    fen = parse_amount_fen(text)
    return 0 if fen is None else fen


def _check_totals(manifest: batch_pb2.BatchManifest, count: int, total: int) -> None:
    if count != manifest.record_count:
        raise ManifestMismatchError("the record count differs from the manifest")
    if total != manifest.total_amount_fen:
        raise ManifestMismatchError("the total amount differs from the manifest")


def _store_new_batch(
    core: GatewayCore,
    connection: Connection,
    caller: Identity,
    head: OpenedManifest,
    chunks: Iterator[tuple[int, bytes, batch_pb2.PaymentRecordList]],
) -> tuple[services_pb2.SubmitBatchResponse, DataKey]:
    manifest = head.manifest
    batch_id = head.batch_id
    policy, bank_code = head.policy, head.bank_code
    now = core.now()
    data_key = DataKey.generate()
    lookups = StoreLookups(
        connection,
        core.tokenizer,
        policy_code=policy.code,
        period=manifest.period,
        batch_id=batch_id,
    )
    checker = BatchChecker(
        policy.rules, manifest.period, lookups, now.date(), claims_made=True
    )
    corrections = CorrectionChecker(connection, caller, policy, manifest)
    digest = ContentDigest(manifest)
    heading = exchange.SetHeading(
        policy.code, policy.name, manifest.period, funds_released=False
    )
    sets = exchange.CheckSetBuilder(
        core, connection, batch_id, bank_code, data_key, heading
    )
    count = total = rejected = 0

    # 3. Chunk by chunk: seal the verified bytes, check every record, route
    #    the accepted ones; the store is asked once per table per chunk.
    list_names = _list_names(policy)
    for index, raw, records in chunks:
        connection.execute(
            insert(schema.batch_chunks).values(
                batch_id=batch_id,
                chunk_index=index,
                chunk_sha256=hashlib.sha256(raw).digest(),
                sealed=data_key.seal(raw, f"{batch_id}:chunk:{index}".encode()),
            )
        )
        lookups.prefetch(_people_of(records), list_names)
        checked = []
        for record in records.records:
            digest.add(record)
            count += 1
            total += _declared_amount(record.amount)
            verdict = _check_record(checker, corrections, record)
            rid = record_id(batch_id, record.row)
            if verdict.accepted:
                assert verdict.person is not None
                lookups.claim(verdict.person, policy.code, manifest.period, rid)
            else:
                rejected += 1
            checked.append((record, rid, verdict))
        lookups.flush_claims()
        routes = sets.add_all([(rid, v) for _, rid, v in checked if v.accepted])
        rows = []
        for record, rid, verdict in checked:
            routed = routes.get(rid, REJECTED)
            rows.append(
                {
                    "record_id": rid,
                    "batch_id": batch_id,
                    "row": record.row,
                    "chunk_index": index,
                    "person_digest": verdict.person,
                    "account_digest": verdict.account,
                    "amount_fen": verdict.amount_fen,
                    "corrects_record_id": record.corrects_record_id or None,
                    "state": routed.state.value,
                    "reasons": ";".join(verdict.reasons),
                    "check_set_id": routed.check_set_id,
                    "instruction_set_id": routed.instruction_set_id,
                    "updated_at": now,
                }
            )
        bulk.insert_rows(connection, schema.records, rows)

    # 4. The chunks add up to what the manifest declared.
    _check_totals(manifest, count, total)

    # 5b. The same content under another batch id is the same batch.
    content_digest = digest.hexdigest()
    duplicate = connection.execute(
        select(schema.batches.c.batch_id).where(
            schema.batches.c.department_org == caller.org,
            schema.batches.c.policy_code == policy.code,
            schema.batches.c.period == manifest.period,
            schema.batches.c.content_digest == content_digest,
        )
    ).one_or_none()
    if duplicate is not None:
        response = services_pb2.SubmitBatchResponse(
            batch_id=duplicate.batch_id, already_submitted=True
        )
        return response, data_key

    # 6. The batch row, last, now that the content digest is known.
    sets.flush()
    kek_id, wrapped = core.keystore.wrap(
        data_key.key,
        epoch=retention.open_epoch(now),
        context=batch_id.encode(),
    )
    connection.execute(
        insert(schema.batches).values(
            batch_id=batch_id,
            department_org=caller.org,
            county=manifest.county,
            department=manifest.department,
            policy_code=policy.code,
            period=manifest.period,
            bank_code=bank_code,
            content_digest=content_digest,
            record_count=count,
            total_amount_fen=total,
            source_file=manifest.source_file[:255],
            submitted_at=now,
            manifest_payload=head.opened.payload,
            manifest_signature=head.envelope.signature,
            signer_certificate=head.envelope.signer_certificate,
            kek_id=kek_id,
            wrapped_key=wrapped,
            state="VALIDATED",
        )
    )
    exchange.refresh_batch_state(connection, batch_id, now)
    core.audit(
        connection,
        caller.org,
        "batch.submitted",
        batch_id,
        f"records={count} rejected={rejected} total_fen={total} "
        f"content={content_digest}",
    )
    response = services_pb2.SubmitBatchResponse(
        batch_id=batch_id,
        state=batch_pb2.BATCH_STATE_VALIDATED,
        record_count=count,
        rejected_count=rejected,
        content_digest=content_digest,
    )
    return response, data_key


def _response_for_existing(
    core: GatewayCore, batch_id: str
) -> services_pb2.SubmitBatchResponse:
    with core.engine.connect() as connection:
        row = connection.execute(
            select(schema.batches).where(schema.batches.c.batch_id == batch_id)
        ).one()
        rejected = connection.execute(
            select(func.count()).where(
                schema.records.c.batch_id == batch_id,
                schema.records.c.state == RecordState.REJECTED.value,
            )
        ).scalar_one()
    return services_pb2.SubmitBatchResponse(
        batch_id=batch_id,
        state=BATCH_STATES[row.state],
        already_submitted=True,
        record_count=row.record_count,
        rejected_count=rejected,
        content_digest=row.content_digest,
    )
