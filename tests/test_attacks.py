"""Attacks on envelopes, batch streams and bank answers, against a real gateway.

Every attack here is sent by a caller that passes authorization (a department
or an agent bank with valid TLS certificates), so what refuses it is the
envelope, submission or exchange logic. For each attack the test asserts:

1. the gRPC status is the stable one listed below;
2. the error details and trailing metadata carry no personal data of the
   fictional records the gateway holds (no name, ID number or account);
3. nothing stored changed: a dump of every table, taken before and after the
   attack, is identical.

One gateway serves the module. Its clock is injected (``OffsetClock``) so an
envelope can be replayed after its validity window without waiting. The
``arena`` fixture builds a world worth attacking: a batch paid in part
through its bank, a batch whose instructions are signed but never delivered
(its funds were never released), and a batch whose account checks were never
pulled.

Attack classes and the status each gets:

================================================  ===================
attack                                            status
================================================  ===================
signature by the right key over other bytes       INVALID_ARGUMENT
signature by the TLS key (wrong purpose)          PERMISSION_DENIED
signature by a revoked or expired signing key     PERMISSION_DENIED
payload type swapped, or another type signed      INVALID_ARGUMENT
header: other audience, sender or key id          INVALID_ARGUMENT
chunks reordered, relabelled, truncated,          INVALID_ARGUMENT
duplicated or extra; a second manifest
manifest count, total or chunk digest wrong       INVALID_ARGUMENT
batch id replayed with other content              ALREADY_EXISTS
envelope replayed after its validity window       FAILED_PRECONDITION
message above the 16 MiB limit                    RESOURCE_EXHAUSTED
deeply nested or garbage payload in an envelope   INVALID_ARGUMENT
garbage or deeply nested request bytes            INVALID_ARGUMENT
result for an unknown or undelivered instruction  NOT_FOUND
result set signed by another bank                 PERMISSION_DENIED
result contradicting a recorded result            FAILED_PRECONDITION
account-check answer for a set never delivered    FAILED_PRECONDITION
acknowledgement with a lease not held             FAILED_PRECONDITION
================================================  ===================
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import inspect, select, text

from gateway.client import ClientCredentials, chunk_records, open_channel, submit
from gateway.core import GATEWAY_AUDIENCE
from gateway.envelope import pae, seal
from gateway.store import schema
from keys.ca import new_private_key
from keys.identity import Identity, Purpose, Role
from keys.signing import Signer
from tests.conftest import Running
from tests.test_authz_matrix import METHODS as RPC
from tests.test_authz_matrix import OffsetClock, invoke, start_gateway
from ykt.v1 import batch_pb2, envelope_pb2, exchange_pb2, services_pb2

DEPARTMENT = "500154-NYNC"
BANK = "CQRCB"
OTHER_BANK = "CQCB"
SUBMIT = RPC["ykt.v1.DepartmentService/SubmitBatch"]
POST_RESULTS = RPC["ykt.v1.BankService/PostResults"]
POST_CHECKS = RPC["ykt.v1.BankService/PostAccountCheckResults"]

# Beyond every validity window the gateway accepts by default (24 hours).
AFTER_THE_WINDOW = dt.timedelta(hours=25)


# -- building requests -----------------------------------------------------------


def records_of(persons: list[Any]) -> list[batch_pb2.PaymentRecord]:
    return [
        batch_pb2.PaymentRecord(
            row=i + 1,
            name=p.name,
            id_number=p.id_number,
            account_number=p.account,
            amount="88.00",
            bank_name="重庆农村商业银行",
        )
        for i, p in enumerate(persons)
    ]


def manifest_for(
    chunks: list[bytes], records: list[batch_pb2.PaymentRecord]
) -> batch_pb2.BatchManifest:
    return batch_pb2.BatchManifest(
        county="500154",
        department="NYNC",
        policy_code="CQ-NY-001",
        period="2026",
        record_count=len(records),
        total_amount_fen=8800 * len(records),
        chunk_sha256=[hashlib.sha256(c).digest() for c in chunks],
    )


def sealed(
    signer: Signer,
    message: Any,
    subject_id: str,
    *,
    now: dt.datetime | None = None,
    audience: str = GATEWAY_AUDIENCE,
) -> envelope_pb2.SignedEnvelope:
    return seal(
        signer,
        message,
        audience=audience,
        subject_id=subject_id,
        now=now or dt.datetime.now(dt.UTC),
    )


def signed_bytes(
    signer: Signer, payload_type: str, payload: bytes
) -> envelope_pb2.SignedEnvelope:
    """An envelope over exactly these bytes, with a valid signature."""
    return envelope_pb2.SignedEnvelope(
        payload_type=payload_type,
        payload=payload,
        signature=signer.sign(pae(payload_type, payload)),
        signer_certificate=signer.cert_der,
    )


@dataclass
class Batch:
    """A batch of small chunks (two records each), ready to be tampered with."""

    manifest: batch_pb2.BatchManifest
    chunks: list[bytes]
    batch_id: str

    @classmethod
    def of(cls, persons: list[Any], batch_id: str) -> Batch:
        records = records_of(persons)
        chunks = list(chunk_records(records, size=2))
        return cls(manifest_for(chunks, records), chunks, batch_id)

    def requests(
        self,
        signer: Signer,
        *,
        envelope: envelope_pb2.SignedEnvelope | None = None,
        order: list[int] | None = None,
        chunks: list[tuple[int, bytes]] | None = None,
        now: dt.datetime | None = None,
    ) -> list[services_pb2.SubmitBatchRequest]:
        if envelope is None:
            envelope = sealed(signer, self.manifest, self.batch_id, now=now)
        if chunks is None:
            indices = order if order is not None else list(range(len(self.chunks)))
            chunks = [(i, self.chunks[i]) for i in indices]
        return [
            services_pb2.SubmitBatchRequest(manifest=envelope),
            *(
                services_pb2.SubmitBatchRequest(
                    chunk=batch_pb2.RecordChunk(index=i, records=data)
                )
                for i, data in chunks
            ),
        ]


def nested_groups(depth: int) -> bytes:
    """Unknown field 15 as ``depth`` nested groups: parsers recurse into them."""
    return bytes([(15 << 3) | 3]) * depth + bytes([(15 << 3) | 4]) * depth


# -- the arena -------------------------------------------------------------------


@dataclass
class Arena:
    running: Running
    clock: OffsetClock
    department: ClientCredentials
    bank: ClientCredentials
    other_bank: ClientCredentials
    # The accepted submission of batch "paid", as streamed.
    paid_submission: list[services_pb2.SubmitBatchRequest]
    # A result set the gateway accepted: one PAID result.
    accepted_results: envelope_pb2.SignedEnvelope
    paid_instruction: str
    # Delivered, with the bank's lease on it.
    delivered_set: envelope_pb2.SignedEnvelope
    delivered_set_id: str
    lease_id: str
    # Signed but never delivered (funds not released).
    held_instruction: str
    # An account-check set never pulled.
    unpulled_check_set: str

    def channel(self, credentials: ClientCredentials) -> grpc.Channel:
        return open_channel(self.running.target, credentials, timeout=30)

    def signer(self, credentials: ClientCredentials) -> Signer:
        return credentials.signer()

    def fresh_batch(self, batch_id: str = "fresh") -> Batch:
        return Batch.of(self.running.persons[30:35], batch_id)


def _confirm_checks(arena_bank: ClientCredentials, channel: grpc.Channel) -> None:
    code, pulled = invoke(
        channel,
        RPC["ykt.v1.BankService/PullAccountChecks"],
        services_pb2.PullAccountChecksRequest(max_sets=50),
    )
    assert code is grpc.StatusCode.OK
    for leased in pulled.sets:
        checks = exchange_pb2.AccountCheckSet.FromString(leased.set.payload)
        answer = exchange_pb2.AccountCheckResultSet(
            check_set_id=checks.header.subject_id
        )
        for check in checks.checks:
            answer.results.add(
                check_id=check.check_id,
                status=exchange_pb2.ACCOUNT_CHECK_STATUS_CONFIRMED,
            )
        request = services_pb2.PostAccountCheckResultsRequest(
            result_set=sealed(
                arena_bank.signer(), answer, f"{checks.header.subject_id}.answer"
            )
        )
        assert invoke(channel, POST_CHECKS, request)[0] is grpc.StatusCode.OK


def build_arena(running: Running, clock: OffsetClock) -> Arena:
    department = running.client(Role.DEPARTMENT, DEPARTMENT)
    bank = running.client(Role.BANK, BANK)
    other_bank = running.client(Role.BANK, OTHER_BANK)
    persons = running.persons

    # Batches "paid" and "held": checks confirmed; only "paid" gets its funds.
    paid = Batch.of(persons[0:4], "paid").requests(department.signer())
    held = Batch.of(persons[4:8], "held").requests(department.signer())
    with open_channel(running.target, department) as channel:
        submit(channel, paid)
        submit(channel, held)
    with open_channel(running.target, bank) as channel:
        _confirm_checks(bank, channel)
    with open_channel(running.target, department) as channel:
        code, _ = invoke(
            channel,
            RPC["ykt.v1.DepartmentService/RecordFundsRelease"],
            services_pb2.RecordFundsReleaseRequest(
                batch_id="paid", treasury_reference="T-paid"
            ),
        )
        assert code is grpc.StatusCode.OK
        # Batch "unpulled": its account checks wait for the bank.
        submit(
            channel, Batch.of(persons[8:12], "unpulled").requests(department.signer())
        )

    # The bank leases "paid"'s instructions and reports one of them PAID.
    with open_channel(running.target, bank) as channel:
        code, pulled = invoke(
            channel,
            RPC["ykt.v1.BankService/PullInstructions"],
            services_pb2.PullInstructionsRequest(max_sets=50),
        )
        assert code is grpc.StatusCode.OK
        assert len(pulled.sets) == 1, "only the released batch is delivered"
        leased = pulled.sets[0]
        instructions = exchange_pb2.InstructionSet.FromString(leased.set.payload)
        paid_instruction = instructions.instructions[0].instruction_id
        results = exchange_pb2.ResultSet()
        result = results.results.add(
            instruction_id=paid_instruction,
            status=exchange_pb2.RESULT_STATUS_PAID,
            bank_reference="BR-0001",
        )
        result.completed_at.FromDatetime(dt.datetime.now(dt.UTC))
        accepted = sealed(bank.signer(), results, "paid.results.1")
        code, _ = invoke(
            channel, POST_RESULTS, services_pb2.PostResultsRequest(result_set=accepted)
        )
        assert code is grpc.StatusCode.OK

    with running.gateway.core.engine.connect() as connection:
        held_instruction = connection.execute(
            select(schema.records.c.record_id).where(
                schema.records.c.batch_id == "held",
                schema.records.c.instruction_set_id.is_not(None),
            )
        ).first()
    assert held_instruction is not None
    return Arena(
        running=running,
        clock=clock,
        department=department,
        bank=bank,
        other_bank=other_bank,
        paid_submission=paid,
        accepted_results=accepted,
        paid_instruction=paid_instruction,
        delivered_set=leased.set,
        delivered_set_id=instructions.header.subject_id,
        lease_id=leased.lease_id,
        held_instruction=held_instruction.record_id,
        unpulled_check_set="unpulled.c0",
    )


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Arena]:
    clock = OffsetClock()
    running = start_gateway(tmp_path_factory.mktemp("attacks"), clock)
    yield build_arena(running, clock)
    running.gateway.stop(0)


def dump(running: Running) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    engine = running.gateway.core.engine
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for name in sorted(inspect(engine).get_table_names()):
            rows = connection.execute(text(f'SELECT * FROM "{name}"')).all()  # noqa: S608
            tables[name] = sorted((tuple(r) for r in rows), key=repr)
    return tables


# -- signers with something wrong -------------------------------------------------


def tls_key_signer(credentials: ClientCredentials) -> Signer:
    """The caller's TLS certificate and key, used to sign: the wrong purpose."""
    return Signer(
        x509.load_pem_x509_certificate(credentials.cert),
        serialization.load_pem_private_key(credentials.key, None),
    )


def revoked_signer(arena: Arena, role: Role, org: str) -> ClientCredentials:
    """Fresh credentials whose signing certificate (only) is revoked."""
    credentials = arena.running.client(role, org)
    arena.running.ca.revoke(credentials.signer().cert.serial_number)
    return credentials


def expired_signer(arena: Arena, role: Role, org: str) -> Signer:
    """A signing certificate that expired yesterday, of a real identity."""
    key = new_private_key()
    now = dt.datetime.now(dt.UTC)
    cert = arena.running.ca.issue(
        Identity(role, org),
        key.public_key(),
        Purpose.SIGNING,
        not_before=now - dt.timedelta(days=30),
        not_after=now - dt.timedelta(days=1),
    )
    return Signer(cert, key)


# -- the attacks -----------------------------------------------------------------

Outcome = tuple[grpc.StatusCode, str, tuple[Any, ...]]


def _send(
    arena: Arena, credentials: ClientCredentials, method: Any, request: Any
) -> Outcome:
    with arena.channel(credentials) as channel:
        path = f"/{method.containing_service.full_name}/{method.name}"
        kwargs: dict[str, Any] = {
            "request_serializer": lambda m: m.SerializeToString(),
            "response_deserializer": lambda b: b,
        }
        try:
            if method.client_streaming:
                channel.stream_unary(path, **kwargs)(iter(request), timeout=60)
            else:
                channel.unary_unary(path, **kwargs)(request, timeout=60)
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or "", tuple(exc.trailing_metadata() or ())
    return grpc.StatusCode.OK, "", ()


def submit_as(
    arena: Arena,
    requests: list[services_pb2.SubmitBatchRequest],
    credentials: ClientCredentials | None = None,
) -> Outcome:
    return _send(arena, credentials or arena.department, SUBMIT, requests)


def post_results_as(
    arena: Arena,
    envelope: envelope_pb2.SignedEnvelope,
    credentials: ClientCredentials | None = None,
) -> Outcome:
    return _send(
        arena,
        credentials or arena.bank,
        POST_RESULTS,
        services_pb2.PostResultsRequest(result_set=envelope),
    )


def result_set(instruction_id: str, status: int, reason: str = "") -> Any:
    message = exchange_pb2.ResultSet()
    result = message.results.add(
        instruction_id=instruction_id,
        status=status,  # type: ignore[arg-type]
        reason_code=reason,
        bank_reference="BR-9999",
    )
    result.completed_at.FromDatetime(dt.datetime.now(dt.UTC))
    return message


# Submission attacks ------------------------------------------------------------


def signature_over_other_bytes(arena: Arena) -> Outcome:
    batch = arena.fresh_batch()
    envelope = sealed(arena.department.signer(), batch.manifest, batch.batch_id)
    altered = batch_pb2.BatchManifest.FromString(envelope.payload)
    altered.total_amount_fen += 100
    envelope.payload = altered.SerializeToString()
    return submit_as(
        arena, batch.requests(arena.department.signer(), envelope=envelope)
    )


def signature_by_tls_key(arena: Arena) -> Outcome:
    batch = arena.fresh_batch()
    return submit_as(arena, batch.requests(tls_key_signer(arena.department)))


def signature_by_revoked_key(arena: Arena) -> Outcome:
    credentials = revoked_signer(arena, Role.DEPARTMENT, DEPARTMENT)
    return submit_as(
        arena, arena.fresh_batch().requests(credentials.signer()), credentials
    )


def signature_by_expired_key(arena: Arena) -> Outcome:
    signer = expired_signer(arena, Role.DEPARTMENT, DEPARTMENT)
    return submit_as(arena, arena.fresh_batch().requests(signer))


def payload_type_swapped(arena: Arena) -> Outcome:
    batch = arena.fresh_batch()
    envelope = sealed(arena.department.signer(), batch.manifest, batch.batch_id)
    envelope.payload_type = "ykt.v1.ResultSet"
    return submit_as(
        arena, batch.requests(arena.department.signer(), envelope=envelope)
    )


def manifest_signed_as_another_type(arena: Arena) -> Outcome:
    batch = arena.fresh_batch()
    genuine = sealed(arena.department.signer(), batch.manifest, batch.batch_id)
    envelope = signed_bytes(
        arena.department.signer(), "ykt.v1.AccountCheckResultSet", genuine.payload
    )
    return submit_as(
        arena, batch.requests(arena.department.signer(), envelope=envelope)
    )


def _with_header(arena: Arena, change: Callable[[Any], None]) -> Outcome:
    signer = arena.department.signer()
    batch = arena.fresh_batch()
    manifest = batch_pb2.BatchManifest.FromString(
        sealed(signer, batch.manifest, batch.batch_id).payload
    )
    change(manifest.header)
    envelope = signed_bytes(
        signer, "ykt.v1.BatchManifest", manifest.SerializeToString()
    )
    return submit_as(arena, batch.requests(signer, envelope=envelope))


def header_for_another_audience(arena: Arena) -> Outcome:
    return _with_header(arena, lambda h: setattr(h, "audience", BANK))


def header_names_another_sender(arena: Arena) -> Outcome:
    return _with_header(arena, lambda h: setattr(h, "sender", "500110-NYNC"))


def header_names_another_key(arena: Arena) -> Outcome:
    return _with_header(arena, lambda h: setattr(h, "key_id", "sha256:" + "0" * 64))


def chunks_reordered(arena: Arena) -> Outcome:
    batch = arena.fresh_batch()
    return submit_as(arena, batch.requests(arena.department.signer(), order=[1, 0, 2]))


def chunks_relabelled(arena: Arena) -> Outcome:
    batch = arena.fresh_batch()
    swapped = [(0, batch.chunks[1]), (1, batch.chunks[0]), (2, batch.chunks[2])]
    return submit_as(arena, batch.requests(arena.department.signer(), chunks=swapped))


def chunks_truncated(arena: Arena) -> Outcome:
    batch = arena.fresh_batch()
    return submit_as(arena, batch.requests(arena.department.signer(), order=[0, 1]))


def chunk_bytes_cut_short(arena: Arena) -> Outcome:
    batch = arena.fresh_batch()
    cut = [(0, batch.chunks[0]), (1, batch.chunks[1][:-7]), (2, batch.chunks[2])]
    return submit_as(arena, batch.requests(arena.department.signer(), chunks=cut))


def chunk_duplicated(arena: Arena) -> Outcome:
    batch = arena.fresh_batch()
    return submit_as(
        arena, batch.requests(arena.department.signer(), order=[0, 0, 1, 2])
    )


def chunk_beyond_the_manifest(arena: Arena) -> Outcome:
    batch = arena.fresh_batch()
    extra = [(0, batch.chunks[0]), (1, batch.chunks[1]), (2, batch.chunks[2])]
    extra.append((3, batch.chunks[2]))
    return submit_as(arena, batch.requests(arena.department.signer(), chunks=extra))


def second_manifest(arena: Arena) -> Outcome:
    batch = arena.fresh_batch()
    requests = batch.requests(arena.department.signer())
    requests.insert(2, requests[0])
    return submit_as(arena, requests)


def _resigned(
    arena: Arena, change: Callable[[batch_pb2.BatchManifest], None]
) -> Outcome:
    batch = arena.fresh_batch()
    change(batch.manifest)
    return submit_as(arena, batch.requests(arena.department.signer()))


def manifest_count_wrong(arena: Arena) -> Outcome:
    return _resigned(arena, lambda m: setattr(m, "record_count", m.record_count + 1))


def manifest_total_wrong(arena: Arena) -> Outcome:
    return _resigned(
        arena, lambda m: setattr(m, "total_amount_fen", m.total_amount_fen - 1)
    )


def manifest_digest_wrong(arena: Arena) -> Outcome:
    def change(manifest: batch_pb2.BatchManifest) -> None:
        manifest.chunk_sha256[1] = hashlib.sha256(b"other bytes").digest()

    return _resigned(arena, change)


def manifest_digest_not_sha256(arena: Arena) -> Outcome:
    def change(manifest: batch_pb2.BatchManifest) -> None:
        manifest.chunk_sha256[1] = manifest.chunk_sha256[1][:16]

    return _resigned(arena, change)


def batch_id_replayed_with_other_content(arena: Arena) -> Outcome:
    batch = Batch.of(arena.running.persons[30:35], "paid")
    return submit_as(arena, batch.requests(arena.department.signer()))


def manifest_replayed_after_window(arena: Arena) -> Outcome:
    arena.clock.offset = AFTER_THE_WINDOW
    try:
        return submit_as(arena, arena.paid_submission)
    finally:
        arena.clock.offset = dt.timedelta()


def manifest_created_in_the_future(arena: Arena) -> Outcome:
    batch = arena.fresh_batch()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    return submit_as(arena, batch.requests(arena.department.signer(), now=later))


def oversized_message(arena: Arena) -> Outcome:
    batch = arena.fresh_batch()
    huge = b"\x00" * (17 * 1024 * 1024)
    requests = batch.requests(arena.department.signer(), chunks=[(0, huge)])
    credentials = arena.department
    channel = grpc.secure_channel(
        arena.running.target,
        grpc.ssl_channel_credentials(credentials.ca, credentials.key, credentials.cert),
        options=[("grpc.max_send_message_length", 64 * 1024 * 1024)],
    )
    with channel:
        try:
            channel.stream_unary(
                "/ykt.v1.DepartmentService/SubmitBatch",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=lambda b: b,
            )(iter(requests), timeout=60)
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or "", tuple(exc.trailing_metadata() or ())
    return grpc.StatusCode.OK, "", ()


def deeply_nested_manifest_payload(arena: Arena) -> Outcome:
    signer = arena.department.signer()
    batch = arena.fresh_batch()
    genuine = sealed(signer, batch.manifest, batch.batch_id)
    envelope = signed_bytes(
        signer, "ykt.v1.BatchManifest", genuine.payload + nested_groups(5000)
    )
    return submit_as(arena, batch.requests(signer, envelope=envelope))


def garbage_manifest_payload(arena: Arena) -> Outcome:
    signer = arena.department.signer()
    batch = arena.fresh_batch()
    envelope = signed_bytes(signer, "ykt.v1.BatchManifest", b"\xff" * 64)
    return submit_as(arena, batch.requests(signer, envelope=envelope))


def deeply_nested_chunk(arena: Arena) -> Outcome:
    signer = arena.department.signer()
    batch = arena.fresh_batch()
    batch.chunks[1] = batch.chunks[1] + nested_groups(5000)
    batch.manifest.chunk_sha256[1] = hashlib.sha256(batch.chunks[1]).digest()
    return submit_as(arena, batch.requests(signer))


def _raw(arena: Arena, path: str, payload: bytes, *, stream: bool) -> Outcome:
    with arena.channel(arena.department) as channel:
        try:
            if stream:
                channel.stream_unary(path)(iter([payload]), timeout=30)
            else:
                channel.unary_unary(path)(payload, timeout=30)
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or "", tuple(exc.trailing_metadata() or ())
    return grpc.StatusCode.OK, "", ()


def garbage_request_bytes(arena: Arena) -> Outcome:
    return _raw(arena, "/ykt.v1.DepartmentService/GetBatch", b"\xff" * 32, stream=False)


def deeply_nested_request_bytes(arena: Arena) -> Outcome:
    return _raw(
        arena,
        "/ykt.v1.DepartmentService/SubmitBatch",
        nested_groups(5000),
        stream=True,
    )


# Bank attacks ------------------------------------------------------------------


def result_for_unknown_instruction(arena: Arena) -> Outcome:
    message = result_set("paid.r999", exchange_pb2.RESULT_STATUS_PAID)
    return post_results_as(arena, sealed(arena.bank.signer(), message, "r.unknown"))


def result_for_undelivered_instruction(arena: Arena) -> Outcome:
    message = result_set(arena.held_instruction, exchange_pb2.RESULT_STATUS_PAID)
    return post_results_as(arena, sealed(arena.bank.signer(), message, "r.held"))


def result_set_signed_by_another_bank(arena: Arena) -> Outcome:
    instruction = arena.paid_instruction.replace(".r1", ".r2")
    message = result_set(instruction, exchange_pb2.RESULT_STATUS_PAID)
    return post_results_as(arena, sealed(arena.other_bank.signer(), message, "r.x"))


def result_signature_over_other_bytes(arena: Arena) -> Outcome:
    instruction = arena.paid_instruction.replace(".r1", ".r2")
    envelope = sealed(
        arena.bank.signer(),
        result_set(instruction, exchange_pb2.RESULT_STATUS_PAID),
        "r.tampered",
    )
    altered = exchange_pb2.ResultSet.FromString(envelope.payload)
    altered.results[0].status = exchange_pb2.RESULT_STATUS_FAILED
    altered.results[0].reason_code = "ACCOUNT_CLOSED"
    envelope.payload = altered.SerializeToString()
    return post_results_as(arena, envelope)


def result_signed_by_tls_key(arena: Arena) -> Outcome:
    message = result_set(arena.paid_instruction, exchange_pb2.RESULT_STATUS_PAID)
    return post_results_as(arena, sealed(tls_key_signer(arena.bank), message, "r.t"))


def result_signed_by_revoked_key(arena: Arena) -> Outcome:
    credentials = revoked_signer(arena, Role.BANK, BANK)
    message = result_set(arena.paid_instruction, exchange_pb2.RESULT_STATUS_PAID)
    return post_results_as(
        arena, sealed(credentials.signer(), message, "r.revoked"), credentials
    )


def result_signed_by_expired_key(arena: Arena) -> Outcome:
    signer = expired_signer(arena, Role.BANK, BANK)
    message = result_set(arena.paid_instruction, exchange_pb2.RESULT_STATUS_PAID)
    return post_results_as(arena, sealed(signer, message, "r.expired"))


def instruction_set_posted_back(arena: Arena) -> Outcome:
    """The gateway's own signed set, posted back as the bank's results."""
    return post_results_as(arena, arena.delivered_set)


def check_answer_posted_as_results(arena: Arena) -> Outcome:
    answer = exchange_pb2.AccountCheckResultSet(check_set_id="paid.c0")
    return post_results_as(arena, sealed(arena.bank.signer(), answer, "r.swapped"))


def results_replayed_after_window(arena: Arena) -> Outcome:
    arena.clock.offset = AFTER_THE_WINDOW
    try:
        return post_results_as(arena, arena.accepted_results)
    finally:
        arena.clock.offset = dt.timedelta()


def result_contradicting_a_recorded_one(arena: Arena) -> Outcome:
    message = result_set(
        arena.paid_instruction, exchange_pb2.RESULT_STATUS_FAILED, "ACCOUNT_CLOSED"
    )
    return post_results_as(arena, sealed(arena.bank.signer(), message, "r.contra"))


def deeply_nested_result_payload(arena: Arena) -> Outcome:
    envelope = signed_bytes(
        arena.bank.signer(), "ykt.v1.ResultSet", nested_groups(5000)
    )
    return post_results_as(arena, envelope)


def check_answer_for_set_never_delivered(arena: Arena) -> Outcome:
    answer = exchange_pb2.AccountCheckResultSet(check_set_id=arena.unpulled_check_set)
    answer.results.add(
        check_id="unpulled.r1", status=exchange_pb2.ACCOUNT_CHECK_STATUS_CONFIRMED
    )
    return _send(
        arena,
        arena.bank,
        POST_CHECKS,
        services_pb2.PostAccountCheckResultsRequest(
            result_set=sealed(arena.bank.signer(), answer, "unpulled.answer")
        ),
    )


def acknowledge_with_a_lease_not_held(arena: Arena) -> Outcome:
    return _send(
        arena,
        arena.bank,
        RPC["ykt.v1.BankService/Acknowledge"],
        services_pb2.AcknowledgeRequest(
            set_id=arena.delivered_set_id, lease_id="0" * 32
        ),
    )


# -- the table of attacks ----------------------------------------------------------

INVALID = grpc.StatusCode.INVALID_ARGUMENT
DENIED = grpc.StatusCode.PERMISSION_DENIED
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
NOT_FOUND = grpc.StatusCode.NOT_FOUND

ATTACKS = [
    pytest.param(signature_over_other_bytes, INVALID, id="sig-other-bytes"),
    pytest.param(signature_by_tls_key, DENIED, id="sig-tls-key"),
    pytest.param(signature_by_revoked_key, DENIED, id="sig-revoked-key"),
    pytest.param(signature_by_expired_key, DENIED, id="sig-expired-key"),
    pytest.param(payload_type_swapped, INVALID, id="type-swapped"),
    pytest.param(manifest_signed_as_another_type, INVALID, id="type-signed-as-other"),
    pytest.param(header_for_another_audience, INVALID, id="header-audience"),
    pytest.param(header_names_another_sender, INVALID, id="header-sender"),
    pytest.param(header_names_another_key, INVALID, id="header-key-id"),
    pytest.param(chunks_reordered, INVALID, id="chunks-reordered"),
    pytest.param(chunks_relabelled, INVALID, id="chunks-relabelled"),
    pytest.param(chunks_truncated, INVALID, id="chunks-truncated"),
    pytest.param(chunk_bytes_cut_short, INVALID, id="chunk-cut-short"),
    pytest.param(chunk_duplicated, INVALID, id="chunk-duplicated"),
    pytest.param(chunk_beyond_the_manifest, INVALID, id="chunk-extra"),
    pytest.param(second_manifest, INVALID, id="manifest-twice"),
    pytest.param(manifest_count_wrong, INVALID, id="manifest-count"),
    pytest.param(manifest_total_wrong, INVALID, id="manifest-total"),
    pytest.param(manifest_digest_wrong, INVALID, id="manifest-digest"),
    pytest.param(manifest_digest_not_sha256, INVALID, id="manifest-digest-short"),
    pytest.param(
        batch_id_replayed_with_other_content,
        grpc.StatusCode.ALREADY_EXISTS,
        id="batch-id-replayed",
    ),
    pytest.param(manifest_replayed_after_window, PRECONDITION, id="manifest-expired"),
    pytest.param(manifest_created_in_the_future, INVALID, id="manifest-future"),
    pytest.param(oversized_message, grpc.StatusCode.RESOURCE_EXHAUSTED, id="oversized"),
    pytest.param(deeply_nested_manifest_payload, INVALID, id="nested-manifest"),
    pytest.param(garbage_manifest_payload, INVALID, id="garbage-manifest"),
    pytest.param(deeply_nested_chunk, INVALID, id="nested-chunk"),
    pytest.param(garbage_request_bytes, INVALID, id="garbage-request"),
    pytest.param(deeply_nested_request_bytes, INVALID, id="nested-request"),
    pytest.param(result_for_unknown_instruction, NOT_FOUND, id="result-unknown"),
    pytest.param(
        result_for_undelivered_instruction, NOT_FOUND, id="result-undelivered"
    ),
    pytest.param(result_set_signed_by_another_bank, DENIED, id="result-other-bank"),
    pytest.param(result_signature_over_other_bytes, INVALID, id="result-other-bytes"),
    pytest.param(result_signed_by_tls_key, DENIED, id="result-tls-key"),
    pytest.param(result_signed_by_revoked_key, DENIED, id="result-revoked-key"),
    pytest.param(result_signed_by_expired_key, DENIED, id="result-expired-key"),
    pytest.param(instruction_set_posted_back, INVALID, id="result-is-our-set"),
    pytest.param(check_answer_posted_as_results, INVALID, id="result-type-swapped"),
    pytest.param(results_replayed_after_window, PRECONDITION, id="result-expired"),
    pytest.param(
        result_contradicting_a_recorded_one, PRECONDITION, id="result-contradicts"
    ),
    pytest.param(deeply_nested_result_payload, INVALID, id="result-nested"),
    pytest.param(
        check_answer_for_set_never_delivered, PRECONDITION, id="check-undelivered"
    ),
    pytest.param(acknowledge_with_a_lease_not_held, PRECONDITION, id="ack-no-lease"),
]


def personal_data(running: Running) -> list[str]:
    return [
        value
        for person in running.persons
        for value in (person.name, person.id_number, person.account)
    ]


@pytest.mark.parametrize(("attack", "expected"), ATTACKS)
def test_attack_is_refused_without_trace(
    arena: Arena, attack: Callable[[Arena], Outcome], expected: grpc.StatusCode
) -> None:
    before = dump(arena.running)

    code, details, metadata = attack(arena)

    after = dump(arena.running)
    assert code is expected, f"got {code.name}: {details}"
    leaked = [v for v in personal_data(arena.running) if v in details + repr(metadata)]
    assert not leaked, "the refusal carries personal data"
    changed = [name for name in before if before[name] != after.get(name)]
    assert not changed, f"tables changed: {changed}"


def test_the_arena_is_what_the_attacks_assume(arena: Arena) -> None:
    """The attacks are only meaningful against this state; check it once."""
    with arena.running.gateway.core.engine.connect() as connection:
        states = dict(
            connection.execute(
                select(schema.exchange_sets.c.set_id, schema.exchange_sets.c.state)
            ).all()
        )
        paid = connection.execute(
            select(schema.records.c.state).where(
                schema.records.c.record_id == arena.paid_instruction
            )
        ).scalar_one()
    assert states[arena.delivered_set_id] == "LEASED"
    assert states[arena.unpulled_check_set] == "READY"
    assert "HELD" in {states[s] for s in states if s.startswith("held.i")}
    assert paid == "PAID"


def test_the_same_requests_untampered_are_accepted(arena: Arena) -> None:
    """A control: the attack builders differ from valid requests only in the attack."""
    batch = arena.fresh_batch("control")
    with arena.channel(arena.department) as channel:
        response = submit(
            channel, batch.requests(arena.department.signer(), order=[0, 1, 2])
        )
    assert response.record_count == 5
    assert not response.already_submitted
    assert dataclasses.is_dataclass(arena)
