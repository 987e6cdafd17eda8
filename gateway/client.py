"""Clients of the gateway: channels over mutual TLS, with a deadline on every call.

Used by the department tool, the bank runner and the demo. Every call gets a
deadline: an explicit ``timeout`` wins, otherwise ``DEFAULT_TIMEOUT`` applies,
so no client ever waits forever on a gateway that stopped answering.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from gateway.core import GATEWAY_AUDIENCE
from gateway.envelope import seal
from gateway.normalize import parse_amount_fen
from keys.signing import Signer
from ykt.v1 import batch_pb2, envelope_pb2, services_pb2, services_pb2_grpc

DEFAULT_TIMEOUT = 60.0
CHUNK_RECORDS = 2000

CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.max_send_message_length", 16 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
]


if TYPE_CHECKING:
    _UU = grpc.UnaryUnaryClientInterceptor[Any, Any]
    _US = grpc.UnaryStreamClientInterceptor[Any, Any]
    _SU = grpc.StreamUnaryClientInterceptor[Any, Any]
    _SS = grpc.StreamStreamClientInterceptor[Any, Any]
else:
    _UU = grpc.UnaryUnaryClientInterceptor
    _US = grpc.UnaryStreamClientInterceptor
    _SU = grpc.StreamUnaryClientInterceptor
    _SS = grpc.StreamStreamClientInterceptor


class _DeadlineInterceptor(_UU, _US, _SU, _SS):
    def __init__(self, timeout: float) -> None:
        self._timeout = timeout

    def _with_deadline(self, details: Any) -> Any:
        if details.timeout is not None:
            return details
        return _CallDetails(
            details.method,
            self._timeout,
            details.metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return continuation(self._with_deadline(details), request)

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return continuation(self._with_deadline(details), request)

    def intercept_stream_unary(
        self, continuation: Callable[..., Any], details: Any, requests: Any
    ) -> Any:
        return continuation(self._with_deadline(details), requests)

    def intercept_stream_stream(
        self, continuation: Callable[..., Any], details: Any, requests: Any
    ) -> Any:
        return continuation(self._with_deadline(details), requests)


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: Any
    compression: Any


@dataclass(frozen=True)
class ClientCredentials:
    """The files ``ykt keys issue`` writes for a client."""

    directory: Path

    @property
    def ca(self) -> bytes:
        return (self.directory / "ca.pem").read_bytes()

    @property
    def cert(self) -> bytes:
        return (self.directory / "cert.pem").read_bytes()

    @property
    def key(self) -> bytes:
        return (self.directory / "key.pem").read_bytes()

    def signer(self) -> Signer:
        return Signer.load(
            self.directory / "signing.pem", self.directory / "signing-key.pem"
        )


def open_channel(
    target: str, credentials: ClientCredentials, *, timeout: float = DEFAULT_TIMEOUT
) -> grpc.Channel:
    """A mutual-TLS channel to the gateway whose calls all carry a deadline."""
    channel_credentials = grpc.ssl_channel_credentials(
        root_certificates=credentials.ca,
        private_key=credentials.key,
        certificate_chain=credentials.cert,
    )
    channel = grpc.secure_channel(target, channel_credentials, options=CHANNEL_OPTIONS)
    return grpc.intercept_channel(channel, _DeadlineInterceptor(timeout))


def chunk_records(
    records: Iterable[batch_pb2.PaymentRecord], size: int = CHUNK_RECORDS
) -> Iterator[bytes]:
    """Serialise records into chunk payloads of at most ``size`` records."""
    chunk = batch_pb2.PaymentRecordList()
    for record in records:
        chunk.records.append(record)
        if len(chunk.records) >= size:
            yield chunk.SerializeToString()
            chunk = batch_pb2.PaymentRecordList()
    if chunk.records:
        yield chunk.SerializeToString()


def _manifest(
    signer: Signer,
    *,
    batch_id: str,
    county: str,
    department: str,
    policy_code: str,
    period: str,
    record_count: int,
    total_amount_fen: int,
    chunk_sha256: list[bytes],
    source_file: str,
    now: dt.datetime | None,
    dry_run: bool,
) -> envelope_pb2.SignedEnvelope:
    manifest = batch_pb2.BatchManifest(
        county=county,
        department=department,
        policy_code=policy_code,
        period=period,
        record_count=record_count,
        total_amount_fen=total_amount_fen,
        chunk_sha256=chunk_sha256,
        source_file=source_file,
        dry_run=dry_run,
    )
    return seal(
        signer,
        manifest,
        audience=GATEWAY_AUDIENCE,
        subject_id=batch_id,
        now=now or dt.datetime.now(dt.UTC),
    )


def _signed_batch(
    signer: Signer,
    *,
    records: list[batch_pb2.PaymentRecord],
    dry_run: bool,
    **heading: Any,
) -> tuple[envelope_pb2.SignedEnvelope, list[bytes]]:
    chunks = list(chunk_records(records))
    envelope = _manifest(
        signer,
        record_count=len(records),
        total_amount_fen=sum(parse_amount_fen(r.amount) or 0 for r in records),
        chunk_sha256=[hashlib.sha256(c).digest() for c in chunks],
        dry_run=dry_run,
        **heading,
    )
    return envelope, chunks


class SpooledBatch:
    """A batch's chunks, serialised once into a temporary file.

    The manifest declares every chunk's digest before the first chunk goes,
    so a batch is read twice: once to digest, once to send. Spooling the
    serialised chunks to disk does both with one parse of the department
    file and memory that stays flat, whatever the batch's size.
    """

    def __init__(
        self,
        records: Iterable[batch_pb2.PaymentRecord],
        *,
        size: int = CHUNK_RECORDS,
        directory: Path | None = None,
    ) -> None:
        # Closed by close() or the context manager; the file has no name.
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115
        self.chunk_sha256: list[bytes] = []
        self.record_count = 0
        self.total_amount_fen = 0

        def counted() -> Iterator[batch_pb2.PaymentRecord]:
            for record in records:
                self.record_count += 1
                self.total_amount_fen += parse_amount_fen(record.amount) or 0
                yield record

        for chunk in chunk_records(counted(), size):
            self.chunk_sha256.append(hashlib.sha256(chunk).digest())
            self._file.write(len(chunk).to_bytes(4, "big"))
            self._file.write(chunk)
        self._file.flush()

    def chunks(self) -> Iterator[bytes]:
        self._file.seek(0)
        for _ in self.chunk_sha256:
            length = int.from_bytes(self._file.read(4), "big")
            yield self._file.read(length)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SpooledBatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def spooled_submission(
    signer: Signer,
    spool: SpooledBatch,
    *,
    batch_id: str,
    county: str,
    department: str,
    policy_code: str,
    period: str,
    source_file: str = "",
    now: dt.datetime | None = None,
) -> Iterator[services_pb2.SubmitBatchRequest]:
    """The signed manifest, then the spooled chunks, as a stream."""
    yield services_pb2.SubmitBatchRequest(
        manifest=_manifest(
            signer,
            batch_id=batch_id,
            county=county,
            department=department,
            policy_code=policy_code,
            period=period,
            record_count=spool.record_count,
            total_amount_fen=spool.total_amount_fen,
            chunk_sha256=spool.chunk_sha256,
            source_file=source_file,
            now=now,
            dry_run=False,
        )
    )
    for index, chunk in enumerate(spool.chunks()):
        yield services_pb2.SubmitBatchRequest(
            chunk=batch_pb2.RecordChunk(index=index, records=chunk)
        )


R = TypeVar("R", services_pb2.SubmitBatchRequest, services_pb2.ValidateBatchRequest)


def _stream(
    kind: Callable[..., R], envelope: envelope_pb2.SignedEnvelope, chunks: list[bytes]
) -> list[R]:
    """The manifest first, then the chunks in order."""
    requests = [kind(manifest=envelope)]
    for index, chunk in enumerate(chunks):
        requests.append(kind(chunk=batch_pb2.RecordChunk(index=index, records=chunk)))
    return requests


def build_submission(
    signer: Signer,
    *,
    batch_id: str,
    county: str,
    department: str,
    policy_code: str,
    period: str,
    records: list[batch_pb2.PaymentRecord],
    source_file: str = "",
    now: dt.datetime | None = None,
    dry_run: bool = False,
) -> list[services_pb2.SubmitBatchRequest]:
    """The signed manifest followed by the chunks, ready to stream.

    ``dry_run`` signs a manifest that only ValidateBatch accepts; it is here
    so tests can show that SubmitBatch refuses one.
    """
    envelope, chunks = _signed_batch(
        signer,
        batch_id=batch_id,
        county=county,
        department=department,
        policy_code=policy_code,
        period=period,
        records=records,
        source_file=source_file,
        now=now,
        dry_run=dry_run,
    )
    return _stream(services_pb2.SubmitBatchRequest, envelope, chunks)


def build_validation(
    signer: Signer,
    *,
    batch_id: str,
    county: str,
    department: str,
    policy_code: str,
    period: str,
    records: list[batch_pb2.PaymentRecord],
    source_file: str = "",
    now: dt.datetime | None = None,
) -> list[services_pb2.ValidateBatchRequest]:
    """A dry run: the same stream under a manifest signed with dry_run set."""
    envelope, chunks = _signed_batch(
        signer,
        batch_id=batch_id,
        county=county,
        department=department,
        policy_code=policy_code,
        period=period,
        records=records,
        source_file=source_file,
        now=now,
        dry_run=True,
    )
    return _stream(services_pb2.ValidateBatchRequest, envelope, chunks)


def submit(
    channel: grpc.Channel, requests: Iterable[services_pb2.SubmitBatchRequest]
) -> services_pb2.SubmitBatchResponse:
    stub = services_pb2_grpc.DepartmentServiceStub(channel)
    response: services_pb2.SubmitBatchResponse = stub.SubmitBatch(
        iter(requests), timeout=600
    )
    return response


def record_funds_release(
    channel: grpc.Channel, batch_id: str, treasury_reference: str
) -> services_pb2.RecordFundsReleaseResponse:
    """Tell the gateway the treasury released the batch's funds (Art. 19)."""
    stub = services_pb2_grpc.DepartmentServiceStub(channel)
    response: services_pb2.RecordFundsReleaseResponse = stub.RecordFundsRelease(
        services_pb2.RecordFundsReleaseRequest(
            batch_id=batch_id, treasury_reference=treasury_reference
        )
    )
    return response
