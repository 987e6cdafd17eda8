"""Submitting batches: signatures, chunk digests, totals and idempotency."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from sqlalchemy import func, select

from connectors.grpc_pull import GrpcPullRunner
from connectors.simulator import SimulatedBankCore, load_ledgers
from gateway.client import (
    ClientCredentials,
    build_submission,
    record_funds_release,
    submit,
)
from gateway.store import schema
from keys.identity import Role
from keys.signing import Signer
from keys.trust import TrustStore
from tests.conftest import Running
from tests.fakes import Person
from ykt.v1 import batch_pb2, services_pb2, services_pb2_grpc

DEPARTMENT = "500154-NYNC"


def records_for(
    persons: list[Person], amount: str = "120.50"
) -> list[batch_pb2.PaymentRecord]:
    return [
        batch_pb2.PaymentRecord(
            row=i + 1,
            name=p.name,
            id_number=p.id_number,
            account_number=p.account,
            amount=amount,
            bank_name="重庆农村商业银行",
        )
        for i, p in enumerate(persons)
    ]


def requests_for(
    credentials: ClientCredentials,
    records: list[batch_pb2.PaymentRecord],
    batch_id: str = "b-1",
    **overrides: object,
) -> list[services_pb2.SubmitBatchRequest]:
    arguments: dict[str, object] = {
        "batch_id": batch_id,
        "county": "500154",
        "department": "NYNC",
        "policy_code": "CQ-NY-001",
        "period": "2026",
        "records": records,
    }
    arguments.update(overrides)
    return build_submission(credentials.signer(), **arguments)  # type: ignore[arg-type]


def stored_batches(running: Running) -> int:
    with running.gateway.core.engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(schema.batches)
        ).scalar_one()


def stored_records(running: Running) -> int:
    with running.gateway.core.engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(schema.records)
        ).scalar_one()


def refused(
    running: Running,
    requests: list[services_pb2.SubmitBatchRequest],
    credentials: ClientCredentials,
) -> grpc.RpcError:
    with running.channel(credentials) as channel, pytest.raises(grpc.RpcError) as error:
        submit(channel, requests)
    return error.value


@pytest.fixture
def department(running: Running) -> ClientCredentials:
    return running.client(Role.DEPARTMENT, DEPARTMENT)


class TestSubmission:
    def test_a_valid_batch_is_stored_with_a_verdict_per_record(
        self, running: Running, department: ClientCredentials
    ) -> None:
        records = records_for(running.persons[:10])
        with running.channel(department) as channel:
            response = submit(channel, requests_for(department, records))
            stub = services_pb2_grpc.DepartmentServiceStub(channel)
            listed = list(
                stub.ListRecords(services_pb2.ListRecordsRequest(batch_id="b-1"))
            )
        assert response.record_count == 10
        assert response.rejected_count == 0
        assert not response.already_submitted
        assert [r.row for r in listed] == list(range(1, 11))
        assert {r.outcome for r in listed} == {batch_pb2.OUTCOME_PENDING}

    def test_resubmitting_identical_content_is_idempotent(
        self, running: Running, department: ClientCredentials
    ) -> None:
        records = records_for(running.persons[:5])
        later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
        with running.channel(department) as channel:
            first = submit(channel, requests_for(department, records))
            again = submit(channel, requests_for(department, records, now=later))
            renamed = submit(channel, requests_for(department, records, batch_id="b-2"))
        assert again.already_submitted
        assert again.batch_id == first.batch_id
        assert renamed.already_submitted
        assert renamed.batch_id == first.batch_id
        assert again.content_digest == first.content_digest
        assert stored_batches(running) == 1
        assert stored_records(running) == 5

    def test_replayed_batch_id_with_different_content_is_refused(
        self, running: Running, department: ClientCredentials
    ) -> None:
        with running.channel(department) as channel:
            submit(channel, requests_for(department, records_for(running.persons[:5])))
        other = records_for(running.persons[5:10])
        error = refused(running, requests_for(department, other), department)
        assert error.code() is grpc.StatusCode.ALREADY_EXISTS
        assert stored_records(running) == 5

    def test_tampered_chunk_is_refused_and_nothing_is_stored(
        self, running: Running, department: ClientCredentials
    ) -> None:
        requests = requests_for(department, records_for(running.persons[:5]))
        chunk = batch_pb2.PaymentRecordList.FromString(requests[1].chunk.records)
        chunk.records[2].amount = "9999.00"
        requests[1].chunk.records = chunk.SerializeToString()
        error = refused(running, requests, department)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "digest" in (error.details() or "")
        assert stored_batches(running) == 0
        assert stored_records(running) == 0

    def test_wrong_declared_total_is_refused(
        self, running: Running, department: ClientCredentials
    ) -> None:
        records = records_for(running.persons[:5])
        requests = requests_for(department, records)
        manifest = batch_pb2.BatchManifest.FromString(requests[0].manifest.payload)
        manifest.total_amount_fen += 1
        requests[0].manifest.CopyFrom(
            _resign(department.signer(), requests[0].manifest.payload_type, manifest)
        )
        error = refused(running, requests, department)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "total" in (error.details() or "")
        assert stored_batches(running) == 0

    def test_signature_over_other_bytes_is_refused(
        self, running: Running, department: ClientCredentials
    ) -> None:
        requests = requests_for(department, records_for(running.persons[:3]))
        manifest = batch_pb2.BatchManifest.FromString(requests[0].manifest.payload)
        manifest.record_count = 2
        requests[0].manifest.payload = manifest.SerializeToString()
        error = refused(running, requests, department)
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "signature" in (error.details() or "")

    def test_expired_envelope_is_refused(
        self, running: Running, department: ClientCredentials
    ) -> None:
        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
        requests = requests_for(department, records_for(running.persons[:3]), now=old)
        error = refused(running, requests, department)
        assert error.code() is grpc.StatusCode.FAILED_PRECONDITION

    def test_department_of_another_county_cannot_submit(self, running: Running) -> None:
        other = running.client(Role.DEPARTMENT, "500110-NYNC")
        requests = requests_for(other, records_for(running.persons[:3]))
        assert (
            refused(running, requests, other).code()
            is grpc.StatusCode.PERMISSION_DENIED
        )

    def test_manifest_signed_with_a_tls_key_is_refused(
        self, running: Running, department: ClientCredentials
    ) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        tls_signer = Signer(
            x509.load_pem_x509_certificate(department.cert),
            serialization.load_pem_private_key(department.key, None),
        )
        records = records_for(running.persons[:3])
        requests = build_submission(
            tls_signer,
            batch_id="b-1",
            county="500154",
            department="NYNC",
            policy_code="CQ-NY-001",
            period="2026",
            records=records,
        )
        assert (
            refused(running, requests, department).code()
            is grpc.StatusCode.PERMISSION_DENIED
        )


def _resign(signer: Signer, payload_type: str, message: batch_pb2.BatchManifest):  # type: ignore[no-untyped-def]
    from gateway.envelope import pae
    from ykt.v1 import envelope_pb2

    payload = message.SerializeToString()
    return envelope_pb2.SignedEnvelope(
        payload_type=payload_type,
        payload=payload,
        signature=signer.sign(pae(payload_type, payload)),
        signer_certificate=signer.cert_der,
    )


def test_batch_is_paid_end_to_end_through_a_pulling_bank(
    running: Running, department: ClientCredentials, tmp_path
) -> None:
    persons = running.persons[:12]
    with running.channel(department) as channel:
        submit(channel, requests_for(department, records_for(persons)))
        record_funds_release(channel, "b-1", "GK-2026-0001")

    bank = running.client(Role.BANK, "CQRCB")
    core = SimulatedBankCore(
        "CQRCB",
        load_ledgers(running.reference / "banks"),
        tmp_path / "bank" / "core.db",
    )
    trust = TrustStore(
        running.ca.ca_path, [running.ca.crl_path], clock=lambda: dt.datetime.now(dt.UTC)
    )
    with running.channel(bank) as channel:
        runner = GrpcPullRunner(channel, core, bank.signer(), trust)
        for _ in range(10):
            if not runner.run_once():
                break

    with running.channel(department) as channel:
        stub = services_pb2_grpc.DepartmentServiceStub(channel)
        batch = stub.GetBatch(services_pb2.GetBatchRequest(batch_id="b-1"))
        listed = list(stub.ListRecords(services_pb2.ListRecordsRequest(batch_id="b-1")))
    assert batch.state == batch_pb2.BATCH_STATE_CLOSED
    assert {r.outcome for r in listed} == {batch_pb2.OUTCOME_PAID}
    assert len(listed) == 12
    with running.gateway.core.engine.connect() as connection:
        results = connection.execute(
            select(func.count()).select_from(schema.results)
        ).scalar_one()
    assert results == 12
