"""Metrics: a real gRPC server on port 0, a real SQLite store, real certificates.

Every value is read back from the text exposition
(``prometheus_client.generate_latest``), as Prometheus would scrape it.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, insert

from gateway.config import dev_config
from gateway.metrics import (
    GatewayMetrics,
    SeenCertificates,
    StoreCollector,
    code_label,
    organisation_name,
    primary_reason,
)
from gateway.security import SecurityInterceptor
from gateway.server import server_credentials
from gateway.store import db, schema
from keys.ca import DevelopmentCA, new_private_key, write_credentials
from keys.identity import Identity, Purpose, Role
from keys.trust import TrustStore
from tests.fakes import make_card, make_id

NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
SERVICE = "test.v1.Echo"


def scrape(registry: CollectorRegistry) -> dict[tuple[str, frozenset[Any]], float]:
    """Every sample of one scrape, keyed by name and label set."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[Any]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, frozenset(labels.items())))


# -- the interceptor ------------------------------------------------------------


def _unary(request: bytes, context: grpc.ServicerContext) -> bytes:
    if request == b"deny":
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "refused")
    if request == b"boom":
        raise RuntimeError("handler failed")
    if request == b"quiet-not-found":
        context.set_code(grpc.StatusCode.NOT_FOUND)
        return b""
    return request


def _server_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    for index in range(int(request.decode())):
        yield b"%d" % index
    if request == b"2":
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "stopped after two")


def _client_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
    return b"%d" % sum(1 for _ in requests)


def _bidi(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
    for request in requests:
        if request == b"stop":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "stop")
        yield request


class _DenyInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Refuses one method by aborting, as the security interceptor does."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = continuation(handler_call_details)
        if handler_call_details.method != f"/{SERVICE}/Refused":
            return handler

        def refuse(request: bytes, context: grpc.ServicerContext) -> bytes:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "revoked")

        return grpc.unary_unary_rpc_method_handler(refuse)


@pytest.fixture
def echo() -> Iterator[tuple[GatewayMetrics, grpc.Channel]]:
    metrics = GatewayMetrics()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        interceptors=[metrics.interceptor(), _DenyInterceptor()],
    )
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "Unary": grpc.unary_unary_rpc_method_handler(_unary),
                    "Refused": grpc.unary_unary_rpc_method_handler(_unary),
                    "ServerStream": grpc.unary_stream_rpc_method_handler(
                        _server_stream
                    ),
                    "ClientStream": grpc.stream_unary_rpc_method_handler(
                        _client_stream
                    ),
                    "Bidi": grpc.stream_stream_rpc_method_handler(_bidi),
                },
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield metrics, channel
    channel.close()
    server.stop(0).wait()


def _labels(kind: str, method: str) -> dict[str, str]:
    return {"grpc_type": kind, "grpc_service": SERVICE, "grpc_method": method}


class TestInterceptor:
    def test_unary_calls_are_counted_with_their_final_code(
        self, echo: tuple[GatewayMetrics, grpc.Channel]
    ) -> None:
        metrics, channel = echo
        call = channel.unary_unary(f"/{SERVICE}/Unary")
        assert call(b"hello", timeout=10) == b"hello"
        assert call(b"again", timeout=10) == b"again"
        for request, code in (
            (b"deny", grpc.StatusCode.PERMISSION_DENIED),
            (b"boom", grpc.StatusCode.UNKNOWN),
            (b"quiet-not-found", grpc.StatusCode.NOT_FOUND),
        ):
            with pytest.raises(grpc.RpcError) as failed:
                call(request, timeout=10)
            assert failed.value.code() is code

        samples = scrape(metrics.registry)

        labels = _labels("unary", "Unary")
        assert value(samples, "grpc_server_started_total", **labels) == 5
        assert value(samples, "grpc_server_msg_received_total", **labels) == 5
        assert value(samples, "grpc_server_msg_sent_total", **labels) == 2
        for code, count in (
            ("OK", 2),
            ("PERMISSION_DENIED", 1),
            ("UNKNOWN", 1),
            ("NOT_FOUND", 1),
        ):
            handled = value(
                samples, "grpc_server_handled_total", grpc_code=code, **labels
            )
            assert handled == count, code
        assert value(samples, "grpc_server_handling_seconds_count", **labels) == 5
        assert (
            value(samples, "grpc_server_handling_seconds_bucket", le="+Inf", **labels)
            == 5
        )

    def test_a_refusal_by_a_later_interceptor_is_counted(
        self, echo: tuple[GatewayMetrics, grpc.Channel]
    ) -> None:
        metrics, channel = echo

        with pytest.raises(grpc.RpcError):
            channel.unary_unary(f"/{SERVICE}/Refused")(b"x", timeout=10)

        samples = scrape(metrics.registry)
        labels = _labels("unary", "Refused")
        assert (
            value(
                samples,
                "grpc_server_handled_total",
                grpc_code="UNAUTHENTICATED",
                **labels,
            )
            == 1
        )
        assert value(samples, "grpc_server_msg_sent_total", **labels) == 0

    def test_server_stream_counts_every_message_sent(
        self, echo: tuple[GatewayMetrics, grpc.Channel]
    ) -> None:
        metrics, channel = echo
        call = channel.unary_stream(f"/{SERVICE}/ServerStream")

        assert list(call(b"3", timeout=10)) == [b"0", b"1", b"2"]
        responses: list[bytes] = []
        with pytest.raises(grpc.RpcError) as failed:
            responses.extend(call(b"2", timeout=10))
        assert failed.value.code() is grpc.StatusCode.FAILED_PRECONDITION

        samples = scrape(metrics.registry)
        labels = _labels("server_stream", "ServerStream")
        assert value(samples, "grpc_server_started_total", **labels) == 2
        assert value(samples, "grpc_server_msg_received_total", **labels) == 2
        assert value(samples, "grpc_server_msg_sent_total", **labels) == 5
        assert (
            value(samples, "grpc_server_handled_total", grpc_code="OK", **labels) == 1
        )
        assert (
            value(
                samples,
                "grpc_server_handled_total",
                grpc_code="FAILED_PRECONDITION",
                **labels,
            )
            == 1
        )

    def test_client_stream_counts_every_message_received(
        self, echo: tuple[GatewayMetrics, grpc.Channel]
    ) -> None:
        metrics, channel = echo
        call = channel.stream_unary(f"/{SERVICE}/ClientStream")

        assert call(iter([b"a", b"b", b"c", b"d"]), timeout=10) == b"4"

        samples = scrape(metrics.registry)
        labels = _labels("client_stream", "ClientStream")
        assert value(samples, "grpc_server_msg_received_total", **labels) == 4
        assert value(samples, "grpc_server_msg_sent_total", **labels) == 1
        assert (
            value(samples, "grpc_server_handled_total", grpc_code="OK", **labels) == 1
        )

    def test_bidi_stream_counts_both_directions_and_the_abort(
        self, echo: tuple[GatewayMetrics, grpc.Channel]
    ) -> None:
        metrics, channel = echo
        call = channel.stream_stream(f"/{SERVICE}/Bidi")

        assert list(call(iter([b"a", b"b"]), timeout=10)) == [b"a", b"b"]
        with pytest.raises(grpc.RpcError) as failed:
            list(call(iter([b"a", b"stop"]), timeout=10))
        assert failed.value.code() is grpc.StatusCode.INVALID_ARGUMENT

        samples = scrape(metrics.registry)
        labels = _labels("bidi_stream", "Bidi")
        assert value(samples, "grpc_server_started_total", **labels) == 2
        assert value(samples, "grpc_server_msg_received_total", **labels) == 4
        assert value(samples, "grpc_server_msg_sent_total", **labels) == 3
        assert (
            value(samples, "grpc_server_handled_total", grpc_code="OK", **labels) == 1
        )
        assert (
            value(
                samples,
                "grpc_server_handled_total",
                grpc_code="INVALID_ARGUMENT",
                **labels,
            )
            == 1
        )

    def test_two_gateways_in_one_process_keep_separate_counts(
        self, echo: tuple[GatewayMetrics, grpc.Channel]
    ) -> None:
        metrics, channel = echo
        other = GatewayMetrics()

        channel.unary_unary(f"/{SERVICE}/Unary")(b"x", timeout=10)

        labels = _labels("unary", "Unary")
        assert value(scrape(metrics.registry), "grpc_server_started_total", **labels)
        assert (
            value(scrape(other.registry), "grpc_server_started_total", **labels) is None
        )


# -- event counters and label safety ---------------------------------------------


class TestCounters:
    def test_helpers_count_under_their_labels(self) -> None:
        metrics = GatewayMetrics()

        metrics.dead_letter("CQRCB", "instruction")
        metrics.dead_letter("CQRCB", "instruction")
        metrics.conflicting_result("ABC")
        metrics.calendar_provisional_answer()
        metrics.refused_call("revoked")
        metrics.refusal_hook()("/ykt.v1.BankService/PostResults", "role")

        samples = scrape(metrics.registry)
        assert (
            value(samples, "ykt_dead_letters_total", bank="CQRCB", kind="instruction")
            == 2
        )
        assert value(samples, "ykt_conflicting_results_total", bank="ABC") == 1
        assert value(samples, "ykt_calendar_provisional_answers_total") == 1
        assert value(samples, "ykt_refused_calls_total", reason="revoked") == 1
        assert value(samples, "ykt_refused_calls_total", reason="role") == 1
        assert value(samples, "ykt_refused_calls_total", reason="stale_crl") == 0

    def test_an_unknown_refusal_reason_is_counted_as_other_without_raising(
        self,
    ) -> None:
        metrics = GatewayMetrics()

        metrics.refused_call("something new")

        samples = scrape(metrics.registry)
        assert value(samples, "ykt_refused_calls_total", reason="other") == 1

    @pytest.mark.parametrize(
        "dangerous",
        [
            make_id(random.Random(3)),
            make_card(random.Random(4)),
            "赵伟",
            "CQRCB 5001",
            "x" * 65,
        ],
    )
    def test_personal_data_is_refused_as_a_label_without_echoing_it(
        self, dangerous: str
    ) -> None:
        metrics = GatewayMetrics()

        with pytest.raises(ValueError, match="not a short code") as refused:
            metrics.dead_letter(dangerous, "instruction")

        assert dangerous not in str(refused.value)
        assert b"ykt_dead_letters_total{" not in generate_latest(metrics.registry)

    def test_codes_pass_the_label_check(self) -> None:
        assert code_label("500154-NYNC") == "500154-NYNC"
        assert code_label("") == ""


# -- business state from the store -----------------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = db.connect(db.sqlite_url(tmp_path / "gateway.db"))
    db.migrate(engine)
    yield engine
    engine.dispose()


def _batch(batch_id: str, state: str) -> dict[str, Any]:
    return {
        "batch_id": batch_id,
        "department_org": "500154-NYNC",
        "county": "500154",
        "department": "NYNC",
        "policy_code": "CQ-NY-001",
        "period": "2026",
        "bank_code": "CQRCB",
        "content_digest": batch_id * 4,
        "record_count": 0,
        "total_amount_fen": 0,
        "source_file": "test.csv",
        "submitted_at": NOW,
        "manifest_payload": b"m",
        "manifest_signature": b"s",
        "signer_certificate": b"c",
        "kek_id": "kek-1",
        "wrapped_key": b"k",
        "state": state,
    }


def _record(batch_id: str, row: int, state: str, reasons: str) -> dict[str, Any]:
    return {
        "record_id": f"{batch_id}:{row}",
        "batch_id": batch_id,
        "row": row,
        "chunk_index": 0,
        "amount_fen": 10_000,
        "state": state,
        "reasons": reasons,
        "updated_at": NOW,
    }


def _set(set_id: str, kind: str, bank: str, state: str, items: int) -> dict[str, Any]:
    return {
        "set_id": set_id,
        "kind": kind,
        "bank_code": bank,
        "batch_id": "b1",
        "item_count": items,
        "sealed": b"x",
        "envelope_sha256": b"0" * 32,
        "created_at": NOW,
        "state": state,
        "deliveries": 0,
    }


def _fill(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(schema.batches),
            [
                _batch("b1", "IN_PAYMENT"),
                _batch("b2", "IN_PAYMENT"),
                _batch("b3", "CLOSED"),
            ],
        )
        connection.execute(
            insert(schema.records),
            [
                _record("b1", 1, "PAID", ""),
                _record("b1", 2, "PAID", ""),
                _record("b1", 3, "REJECTED", "ID_INVALID;DECEASED"),
                _record("b1", 4, "REJECTED", "ID_INVALID"),
                _record("b2", 1, "REJECTED", "ACCOUNT_FROZEN,ACCOUNT_CLOSED"),
                _record("b2", 2, "FAILED", "BANK-SPECIFIC-9"),
                _record("b2", 3, "INSTRUCTED", ""),
            ],
        )
        connection.execute(
            insert(schema.exchange_sets),
            [
                _set("s1", "instruction", "CQRCB", "DONE", 3),
                _set("s2", "instruction", "CQRCB", "DONE", 2),
                _set("s3", "instruction", "ABC", "READY", 4),
                _set("s4", "account-check", "CQRCB", "READY", 9),
            ],
        )


class TestStoreCollector:
    def test_business_families_come_from_the_database(self, engine: Engine) -> None:
        _fill(engine)
        metrics = GatewayMetrics()
        metrics.watch_store(engine)

        samples = scrape(metrics.registry)

        assert value(samples, "ykt_batches", state="IN_PAYMENT") == 2
        assert value(samples, "ykt_batches", state="CLOSED") == 1
        assert value(samples, "ykt_records", state="PAID", reason="") == 2
        assert value(samples, "ykt_records", state="REJECTED", reason="ID_INVALID") == 2
        assert (
            value(samples, "ykt_records", state="REJECTED", reason="ACCOUNT_FROZEN")
            == 1
        )
        assert value(samples, "ykt_records", state="FAILED", reason="OTHER") == 1
        assert value(samples, "ykt_instructions", bank="CQRCB", state="DONE") == 5
        assert value(samples, "ykt_instructions", bank="ABC", state="READY") == 4
        assert value(samples, "ykt_instructions", bank="CQRCB", state="READY") is None
        assert value(samples, "ykt_collector_up", collector="store") == 1

    def test_counts_follow_the_database_between_scrapes(self, engine: Engine) -> None:
        metrics = GatewayMetrics()
        metrics.watch_store(engine)
        assert value(scrape(metrics.registry), "ykt_batches", state="CLOSED") is None

        _fill(engine)

        assert value(scrape(metrics.registry), "ykt_batches", state="CLOSED") == 1

    def test_hooks_feed_deadlines_and_calendar_coverage(self, engine: Engine) -> None:
        metrics = GatewayMetrics()
        metrics.watch_store(
            engine,
            deadline_counts=lambda: [
                ("CQRCB", "pay", "at_risk", 2),
                ("CQRCB", "refund_report", "breached", 1),
            ],
            calendar_coverage=lambda: {2026: True},
            clock=lambda: NOW,
        )

        samples = scrape(metrics.registry)

        assert (
            value(samples, "ykt_deadlines", bank="CQRCB", kind="pay", status="at_risk")
            == 2
        )
        assert (
            value(
                samples,
                "ykt_deadlines",
                bank="CQRCB",
                kind="refund_report",
                status="breached",
            )
            == 1
        )
        assert value(samples, "ykt_calendar_year_covered", year="2026") == 1
        # Not mentioned by the hook: reported as not covered, so alerts fire.
        assert value(samples, "ykt_calendar_year_covered", year="2027") == 0

    def test_the_calendar_year_turns_over_at_beijing_midnight(
        self, engine: Engine
    ) -> None:
        metrics = GatewayMetrics()
        metrics.watch_store(
            engine,
            calendar_coverage=lambda: {2027: True},
            clock=lambda: dt.datetime(2026, 12, 31, 16, 30, tzinfo=dt.UTC),
        )

        samples = scrape(metrics.registry)

        assert value(samples, "ykt_calendar_year_covered", year="2027") == 1
        assert value(samples, "ykt_calendar_year_covered", year="2028") == 0
        assert value(samples, "ykt_calendar_year_covered", year="2026") is None

    def test_a_failing_hook_is_reported_and_the_rest_still_served(
        self, engine: Engine
    ) -> None:
        _fill(engine)
        metrics = GatewayMetrics()
        metrics.watch_store(
            engine, deadline_counts=lambda: [("CQRCB", "payday", "late", 1)]
        )

        samples = scrape(metrics.registry)

        assert value(samples, "ykt_collector_up", collector="deadlines") == 0
        assert value(samples, "ykt_collector_up", collector="store") == 1
        assert value(samples, "ykt_batches", state="CLOSED") == 1

    def test_an_unreachable_database_does_not_fail_the_scrape(
        self, tmp_path: Path
    ) -> None:
        broken = db.connect(db.sqlite_url(tmp_path / "missing" / "nowhere.db"))
        collector = StoreCollector(broken)

        families, status = collector.read()

        assert status == [("store", 0.0)]
        assert all(not family.samples for family in families)

    def test_primary_reason_is_the_first_code(self) -> None:
        assert primary_reason("") == ""
        assert primary_reason("DECEASED;ID_INVALID") == "DECEASED"
        assert primary_reason("ACCOUNT_CLOSED,DECEASED") == "ACCOUNT_CLOSED"
        assert primary_reason("赵伟") == "OTHER"


# -- certificates ----------------------------------------------------------------


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def pki(tmp_path: Path) -> tuple[DevelopmentCA, Clock]:
    clock = Clock(dt.datetime.now(dt.UTC))
    return DevelopmentCA.open_or_create(tmp_path / "pki", clock=clock), clock


def _leaf_with_person_cn() -> x509.Certificate:
    """A self-issued leaf whose CN is a (fictional) person's name."""
    key = new_private_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "赵伟")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=10))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier("urn:ykt:bank:CQRCB")]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )


class TestCertificateCollector:
    def test_every_source_is_exported_with_exporter_labels(
        self, tmp_path: Path, pki: tuple[DevelopmentCA, Clock]
    ) -> None:
        ca, clock = pki
        gateway = ca.dev_generate_credentials(Identity(Role.GATEWAY, "gateway"))
        write_credentials(gateway, ca.cert, tmp_path / "gw")
        bank = ca.dev_generate_credentials(
            Identity(Role.BANK, "CQRCB"),
            not_before=clock.now - dt.timedelta(days=30),
            not_after=clock.now - dt.timedelta(days=1),
        )
        trust = TrustStore(ca.ca_path, [ca.crl_path], clock=clock)
        metrics = GatewayMetrics()
        metrics.watch_certificates(
            gateway_certificates=[tmp_path / "gw" / "cert.pem"],
            trust=trust,
            dev_ca=ca,
            clock=clock,
        )
        metrics.seen_certificates.seen(bank.cert)

        samples = scrape(metrics.registry)

        gateway_labels = {
            "subject_CN": "gateway gateway",
            "issuer_CN": "ykt development CA",
            "serial_number": str(gateway.cert.serial_number),
        }
        assert value(
            samples, "x509_cert_not_after", source="gateway", **gateway_labels
        ) == pytest.approx(gateway.cert.not_valid_after_utc.timestamp())
        assert (
            value(samples, "x509_cert_expired", source="issued", **gateway_labels) == 0
        )
        bank_labels = {
            "subject_CN": "bank CQRCB",
            "issuer_CN": "ykt development CA",
            "serial_number": str(bank.cert.serial_number),
        }
        assert (
            value(samples, "x509_cert_expired", source="seen_client", **bank_labels)
            == 1
        )
        assert bank.signing_cert is not None
        assert value(
            samples,
            "x509_cert_not_before",
            source="issued",
            subject_CN="bank CQRCB signing",
            issuer_CN="ykt development CA",
            serial_number=str(bank.signing_cert.serial_number),
        ) == pytest.approx(bank.signing_cert.not_valid_before_utc.timestamp())
        assert (
            value(
                samples,
                "x509_cert_not_after",
                source="trusted_ca",
                subject_CN="ykt development CA",
                issuer_CN="ykt development CA",
                serial_number=str(ca.cert.serial_number),
            )
            is not None
        )
        ca_labels = {"issuer_CN": "ykt development CA", "source": "trusted_ca"}
        assert value(samples, "x509_crl_stale", **ca_labels) == 0
        assert value(samples, "ykt_collector_up", collector="certificates") == 1

    def test_a_crl_past_next_update_is_stale(
        self, pki: tuple[DevelopmentCA, Clock]
    ) -> None:
        ca, clock = pki
        crl = ca.write_crl(days=1)
        trust = TrustStore(ca.ca_path, [ca.crl_path], clock=clock)
        metrics = GatewayMetrics()
        metrics.watch_certificates(
            gateway_certificates=[], trust=trust, dev_ca=None, clock=clock
        )
        labels = {"issuer_CN": "ykt development CA", "source": "trusted_ca"}
        assert value(scrape(metrics.registry), "x509_crl_stale", **labels) == 0

        clock.now += dt.timedelta(days=2)

        samples = scrape(metrics.registry)
        assert value(samples, "x509_crl_stale", **labels) == 1
        assert crl.next_update_utc is not None
        assert value(samples, "x509_crl_next_update", **labels) == pytest.approx(
            crl.next_update_utc.timestamp()
        )

    def test_a_trusted_ca_without_a_crl_counts_as_stale(
        self, tmp_path: Path, pki: tuple[DevelopmentCA, Clock]
    ) -> None:
        ca, clock = pki
        trust = TrustStore(ca.ca_path, [tmp_path / "absent.pem"], clock=clock)
        collector_metrics = GatewayMetrics()
        collector_metrics.watch_certificates(
            gateway_certificates=[], trust=trust, clock=clock
        )

        samples = scrape(collector_metrics.registry)

        labels = {"issuer_CN": "ykt development CA", "source": "trusted_ca"}
        assert value(samples, "x509_crl_stale", **labels) == 1
        assert value(samples, "x509_crl_next_update", **labels) is None

    def test_a_person_in_a_subject_cn_never_becomes_a_label(self) -> None:
        cert = _leaf_with_person_cn()
        assert organisation_name(cert) == "bank CQRCB"

    def test_seen_certificates_stay_bounded(
        self, pki: tuple[DevelopmentCA, Clock]
    ) -> None:
        ca, _ = pki
        seen = SeenCertificates(capacity=2)
        certs = [
            ca.issue(
                Identity(Role.UNIT, f"U{i}"),
                new_private_key().public_key(),
                Purpose.TLS,
            )
            for i in range(3)
        ]

        for cert in certs:
            seen.seen(cert)
        seen.seen(certs[1])

        kept = seen.certificates()
        assert [c.serial_number for c in kept] == [
            certs[2].serial_number,
            certs[1].serial_number,
        ]

    def test_seen_is_safe_from_many_threads(
        self, pki: tuple[DevelopmentCA, Clock]
    ) -> None:
        ca, _ = pki
        seen = SeenCertificates(capacity=5)
        cert = ca.issue(
            Identity(Role.UNIT, "U1"),
            new_private_key().public_key(),
            Purpose.TLS,
        )

        threads = [
            threading.Thread(target=lambda: [seen.seen(cert) for _ in range(200)])
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert len(seen.certificates()) == 1


# -- wired as the change request for gateway/server.py proposes -------------------


def _put_policy(request: bytes, context: grpc.ServicerContext) -> bytes:
    return b""


def test_security_refusals_and_client_certificates_over_real_mtls(
    tmp_path: Path,
) -> None:
    """The interceptor order and hooks proposed for ``gateway.server.build``."""
    config = dev_config(tmp_path / "state", "127.0.0.1:0", None)
    ca = DevelopmentCA(tmp_path / "state" / "pki")
    trust = TrustStore(config.ca_bundle, config.crls, clock=lambda: ca_now())
    metrics = GatewayMetrics()
    metrics.watch_certificates(
        gateway_certificates=[config.tls_cert, config.signing_cert],
        trust=trust,
        dev_ca=ca,
    )

    class Seen(grpc.ServerInterceptor):  # type: ignore[type-arg]
        # Stands in for the proposed ``seen()`` call in SecurityInterceptor.
        def intercept_service(self, continuation: Any, details: Any) -> Any:
            handler = continuation(details)
            inner = handler.unary_unary

            def run(request: bytes, context: grpc.ServicerContext) -> Any:
                pem = context.auth_context()["x509_pem_cert"][0]
                metrics.seen_certificates.seen(x509.load_pem_x509_certificate(pem))
                return inner(request, context)

            return grpc.unary_unary_rpc_method_handler(run)

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        interceptors=[
            metrics.interceptor(),
            SecurityInterceptor(trust, on_refusal=metrics.refusal_hook()),
            Seen(),
        ],
    )
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "ykt.v1.AdminService",
                {"PutPolicy": grpc.unary_unary_rpc_method_handler(_put_policy)},
            )
        ]
    )
    port = server.add_secure_port("127.0.0.1:0", server_credentials(config))
    server.start()
    try:
        finance = _client(ca, tmp_path, Role.FINANCE, "500154-CZJ")
        bank = _client(ca, tmp_path, Role.BANK, "CQRCB")
        revoked = _client(ca, tmp_path, Role.FINANCE, "500155-CZJ")
        ca.revoke(revoked[1])

        codes = [_call(port, creds) for creds, _ in (finance, bank, revoked)]
    finally:
        server.stop(0).wait()

    assert codes == [
        grpc.StatusCode.OK,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    ]
    samples = scrape(metrics.registry)
    labels = {
        "grpc_type": "unary",
        "grpc_service": "ykt.v1.AdminService",
        "grpc_method": "PutPolicy",
    }
    for code in ("OK", "PERMISSION_DENIED", "UNAUTHENTICATED"):
        assert (
            value(samples, "grpc_server_handled_total", grpc_code=code, **labels) == 1
        )
    assert value(samples, "ykt_refused_calls_total", reason="role") == 1
    assert value(samples, "ykt_refused_calls_total", reason="revoked") == 1
    seen_subjects = {
        dict(labels_)["subject_CN"]
        for (name, labels_) in samples
        if name == "x509_cert_not_after" and ("source", "seen_client") in labels_
    }
    # Only the call that passed the gate reached the stand-in; see the
    # change request: the real call sits before the revocation check.
    assert seen_subjects == {"finance 500154-CZJ"}


def ca_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _client(
    ca: DevelopmentCA, tmp_path: Path, role: Role, org: str
) -> tuple[grpc.ChannelCredentials, int]:
    credentials = ca.dev_generate_credentials(Identity(role, org))
    out = tmp_path / "clients" / org
    write_credentials(credentials, ca.cert, out)
    channel_credentials = grpc.ssl_channel_credentials(
        root_certificates=(out / "ca.pem").read_bytes(),
        private_key=(out / "key.pem").read_bytes(),
        certificate_chain=(out / "cert.pem").read_bytes(),
    )
    return channel_credentials, credentials.cert.serial_number


def _call(port: int, credentials: grpc.ChannelCredentials) -> grpc.StatusCode:
    with grpc.secure_channel(f"localhost:{port}", credentials) as channel:
        try:
            channel.unary_unary("/ykt.v1.AdminService/PutPolicy")(b"", timeout=10)
        except grpc.RpcError as exc:
            code: grpc.StatusCode = exc.code()
            return code
    return grpc.StatusCode.OK
