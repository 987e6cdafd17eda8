"""Prometheus metrics: gRPC calls, the business state, refusals and certificates.

Every metric lives in a ``CollectorRegistry`` that the caller owns and passes
in (``GatewayMetrics.registry``), never in prometheus-client's global one, so
several gateways can run in one process (as the tests do) without sharing
counters.

What is measured:
- Every RPC that reaches a registered handler, under the names and labels of
  go-grpc-prometheus (``grpc_server_*``), so existing dashboards and alert
  rules for gRPC servers apply unchanged.
- The business state, read from the database at scrape time by
  ``StoreCollector``: batches, records, instructions, deadlines, calendar
  coverage. Nothing is cached between scrapes, so a restarted gateway reports
  the same numbers as the one before it.
- Events the gateway code reports through helper methods: dead letters,
  conflicting results, answers given on a provisional calendar, refused calls.
- Certificates and CRLs, under the names and labels of
  x509-certificate-exporter (``x509_cert_*``, ``x509_crl_*``), plus our own
  ``source`` label, read at scrape time by ``CertificateCollector``.

Invariants and the threats they answer:
- No label value is personal data. Labels carry codes only: gRPC method
  names, states, reason codes, bank and organisation codes, certificate
  serial numbers and CA names. ``code_label`` refuses anything that is not a
  short ASCII code, and anything holding a long run of digits (the shape of an
  ID number or an account number), so a caller's mistake cannot put a person
  into a time series that is kept for months.
- The ``subject_CN`` label is an organisation code, never a person. For a CA
  it is the CA's common name (a CA is an organisation). For a leaf
  certificate it is *derived* from the certificate's ykt identity
  (``"<role> <organisation>"``, plus ``" signing"`` for signing certificates,
  the same text the development CA writes into the CN) and is never copied
  from the subject: an external CA that writes a person's name into the CN
  cannot leak it here. A leaf certificate without a ykt identity gets "".
- Label cardinality is bounded: gRPC labels come only from registered
  handlers (a call to an unknown method has no handler and is not counted),
  reason codes are mapped onto the closed ``ReasonCode`` set, and the
  registry of client certificates seen in handshakes keeps at most
  ``SeenCertificates.capacity`` entries (least recently seen dropped first).
- A failing database or hook does not fail the scrape: the collector reports
  ``ykt_collector_up{collector=...} 0`` and logs the exception type (never
  row content), and the other families are still served.

What cannot be counted here:
- A failed TLS handshake (no client certificate, an expired or unknown-CA
  certificate, a protocol or cipher mismatch) is refused inside gRPC core
  and never reaches Python, so neither the interceptor nor
  ``ykt_refused_calls_total`` sees it. Watch those from the client side, or
  from a TLS-terminating proxy's own metrics.
- A call refused before dispatch by ``maximum_concurrent_rpcs``
  (RESOURCE_EXHAUSTED), by message-size limits while decoding, or for a
  method no service registers (UNIMPLEMENTED) never reaches an interceptor
  handler either.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from cryptography import x509
from cryptography.x509.oid import NameOID
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from gateway import logs
from gateway.reasons import ReasonCode
from gateway.states import SetKind
from gateway.store import schema
from keys.ca import DevelopmentCA
from keys.identity import Identity, IdentityError, Purpose, purpose_of
from keys.trust import TrustStore

_logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
DeadlineCounts = Callable[[], Iterable[tuple[str, str, str, int]]]
CalendarCoverage = Callable[[], Mapping[int, bool]]

# The bucket bounds of go-grpc-prometheus (Prometheus' DefBuckets), in seconds.
HANDLING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# The working-day calendar is Beijing time's (UTC+8, no daylight saving), so
# "this year" turns over at local midnight, not at UTC midnight.
CHINA_STANDARD_TIME = dt.timezone(dt.timedelta(hours=8))

DEADLINE_KINDS = frozenset({"pay", "report", "refund_report"})
DEADLINE_STATUSES = frozenset({"on_time", "at_risk", "breached"})
REFUSAL_REASONS = frozenset({"revoked", "role", "unknown_identity", "stale_crl"})
CERTIFICATE_SOURCES = ("gateway", "trusted_ca", "issued", "seen_client")

# A primary reason outside ``ReasonCode`` (say, a bank's own code) is shown
# as this, so a bank cannot grow the label set.
OTHER_REASON = "OTHER"

_CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$|^$")
_LONG_DIGIT_RUN = re.compile(r"[0-9]{12,}")
_CERT_LABELS = ("subject_CN", "issuer_CN", "serial_number", "source")
_CRL_LABELS = ("issuer_CN", "source")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def code_label(value: str) -> str:
    """Return ``value`` if it is safe as a label value; raise otherwise.

    Safe means a short ASCII code without a run of twelve or more digits.
    The error message never repeats the value: it may be the personal data
    this check exists to keep out.
    """
    if not _CODE_PATTERN.match(value) or _LONG_DIGIT_RUN.search(value):
        raise ValueError("metric label value is not a short code; refused")
    return value


# -- gRPC server metrics --------------------------------------------------------


if TYPE_CHECKING:
    _ServerInterceptor = grpc.ServerInterceptor[Any, Any]
    _Handler = grpc.RpcMethodHandler[Any, Any]
else:
    _ServerInterceptor = grpc.ServerInterceptor
    _Handler = grpc.RpcMethodHandler


class GrpcServerMetrics:
    """The go-grpc-prometheus server families, registered in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("grpc_type", "grpc_service", "grpc_method")
        self.started = Counter(
            "grpc_server_started",
            "RPCs started on the server.",
            labels,
            registry=registry,
        )
        self.handled = Counter(
            "grpc_server_handled",
            "RPCs completed on the server, whatever their status code.",
            (*labels, "grpc_code"),
            registry=registry,
        )
        self.msg_received = Counter(
            "grpc_server_msg_received",
            "Request messages received by the server.",
            labels,
            registry=registry,
        )
        self.msg_sent = Counter(
            "grpc_server_msg_sent",
            "Response messages sent by the server.",
            labels,
            registry=registry,
        )
        self.handling_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Time from the start of an RPC to its final status, in seconds.",
            labels,
            buckets=HANDLING_BUCKETS,
            registry=registry,
        )


def split_method(full_method: str) -> tuple[str, str]:
    """``"/ykt.v1.BankService/Acknowledge"`` -> service and method names."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service or "unknown", method or "unknown"


def grpc_type(handler: _Handler) -> str:
    """The go-grpc-prometheus call type, from the handler's streaming flags."""
    if handler.request_streaming and handler.response_streaming:
        return "bidi_stream"
    if handler.request_streaming:
        return "client_stream"
    if handler.response_streaming:
        return "server_stream"
    return "unary"


def _final_code(context: grpc.ServicerContext, error: BaseException | None) -> str:
    """The status the client will see once the handler has finished.

    ``context.abort`` sets the code and then raises, so a code set on the
    context wins over the exception. An exception without a code becomes
    UNKNOWN, as gRPC reports it; a response stream closed early (the client
    went away) is CANCELLED.
    """
    code_of = getattr(context, "code", None)
    code = code_of() if callable(code_of) else None
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if error is None:
        return "OK"
    if isinstance(error, GeneratorExit):
        return "CANCELLED"
    return "UNKNOWN"


class _Call:
    """The label values and counters of one RPC method."""

    def __init__(self, metrics: GrpcServerMetrics, labels: tuple[str, str, str]):
        self._metrics = metrics
        self._labels = labels

        # Series exist at zero from the first call on, as go-grpc-prometheus
        # initialises them, so rate() and "== 0" see them.
        for family in (metrics.started, metrics.msg_received, metrics.msg_sent):
            family.labels(*labels)
        metrics.handling_seconds.labels(*labels)

    def started(self) -> float:
        self._metrics.started.labels(*self._labels).inc()
        return time.perf_counter()

    def received(self) -> None:
        self._metrics.msg_received.labels(*self._labels).inc()

    def sent(self) -> None:
        self._metrics.msg_sent.labels(*self._labels).inc()

    def handled(self, code: str, since: float) -> None:
        self._metrics.handled.labels(*self._labels, code).inc()
        self._metrics.handling_seconds.labels(*self._labels).observe(
            time.perf_counter() - since
        )

    def counted(self, requests: Iterator[Any]) -> Iterator[Any]:
        for request in requests:
            self.received()
            yield request


class MetricsInterceptor(_ServerInterceptor):
    """Counts every RPC that reaches a handler, with its final status code.

    Put it FIRST in the server's interceptor list: interceptors run in list
    order, so the first one wraps all the others and also sees the calls the
    security interceptor refuses (it refuses by ``context.abort``).
    """

    def __init__(self, metrics: GrpcServerMetrics) -> None:
        self._metrics = metrics

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], _Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None

        service, method = split_method(handler_call_details.method)
        call = _Call(self._metrics, (grpc_type(handler), service, method))
        return _instrument(handler, call)


def _instrument(handler: _Handler, call: _Call) -> _Handler:
    streaming_requests = handler.request_streaming

    def requests_of(request: Any) -> Any:
        if streaming_requests:
            return call.counted(request)
        call.received()
        return request

    def unary_response(behavior: Callable[..., Any]) -> Callable[..., Any]:
        def run(request: Any, context: grpc.ServicerContext) -> Any:
            since = call.started()
            try:
                response = behavior(requests_of(request), context)
            except BaseException as exc:
                call.handled(_final_code(context, exc), since)
                raise

            code = _final_code(context, None)
            if code == "OK":
                call.sent()
            call.handled(code, since)
            return response

        return run

    def stream_response(behavior: Callable[..., Any]) -> Callable[..., Any]:
        def run(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            since = call.started()
            try:
                for response in behavior(requests_of(request), context):
                    call.sent()
                    yield response
            except BaseException as exc:
                call.handled(_final_code(context, exc), since)
                raise

            call.handled(_final_code(context, None), since)

        return run

    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            unary_response(handler.unary_unary), **kwargs
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            unary_response(handler.stream_unary), **kwargs
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            stream_response(handler.unary_stream), **kwargs
        )
    assert handler.stream_stream is not None
    return grpc.stream_stream_rpc_method_handler(
        stream_response(handler.stream_stream), **kwargs
    )


# -- business state, read at scrape time -----------------------------------------


def primary_reason(reasons: str) -> str:
    """The first code of a stored reason list, or "" when there is none.

    The list is stored primary first. Both "," and ";" are accepted as
    separators. A code outside ``ReasonCode`` becomes ``OTHER_REASON``.
    """
    first = re.split(r"[,;]", reasons, maxsplit=1)[0].strip()
    if not first:
        return ""
    return first if first in ReasonCode.__members__ else OTHER_REASON


def collector_up(status: Iterable[tuple[str, float]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "ykt_collector_up",
        "1 when a scrape-time collector read its source without error.",
        labels=["collector"],
    )
    for name, value in status:
        family.add_metric([name], value)
    return family


def _guarded(
    name: str,
    read: Callable[[dict[str, GaugeMetricFamily]], None],
    families: dict[str, GaugeMetricFamily],
) -> float:
    """Run ``read``; on failure log the exception type only and return 0.0."""
    try:
        read(families)
    except (SQLAlchemyError, ValueError, TypeError, LookupError, OSError) as exc:
        # The exception type only: its text could quote row content.
        _logger.error(
            "metrics collector failed",
            extra={"collector": name, "error": type(exc).__name__},
        )
        return 0.0
    return 1.0


class StoreCollector(Collector):
    """Batches, records, instructions, deadlines and calendar coverage.

    Every family is computed from the database (or a hook) when Prometheus
    scrapes. The queries read only state and code columns; none touches a
    digest or a sealed blob.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        deadline_counts: DeadlineCounts | None = None,
        calendar_coverage: CalendarCoverage | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._engine = engine
        self._deadline_counts = deadline_counts
        self._calendar_coverage = calendar_coverage
        self._clock = clock

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Names only, so registering does not query the database.
        return list(self._families().values())

    def collect(self) -> Iterable[GaugeMetricFamily]:
        families, status = self.read()
        return [*families, collector_up(status)]

    def read(self) -> tuple[list[GaugeMetricFamily], list[tuple[str, float]]]:
        """The families, and whether each source answered (1.0) or not."""
        families = self._families()

        status = [("store", _guarded("store", self._store_rows, families))]
        if self._deadline_counts is not None:
            status.append(
                ("deadlines", _guarded("deadlines", self._deadline_rows, families))
            )
        if self._calendar_coverage is not None:
            status.append(
                ("calendar", _guarded("calendar", self._calendar_rows, families))
            )

        return list(families.values()), status

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        return {
            "batches": GaugeMetricFamily(
                "ykt_batches", "Batches by state.", labels=["state"]
            ),
            "records": GaugeMetricFamily(
                "ykt_records",
                'Payment records by state and primary reason code ("" if none).',
                labels=["state", "reason"],
            ),
            "instructions": GaugeMetricFamily(
                "ykt_instructions",
                "Instructions (items of instruction sets) by agent bank and set state.",
                labels=["bank", "state"],
            ),
            "deadlines": GaugeMetricFamily(
                "ykt_deadlines",
                "Open and recent deadlines by agent bank, kind and status.",
                labels=["bank", "kind", "status"],
            ),
            "calendar": GaugeMetricFamily(
                "ykt_calendar_year_covered",
                "1 if a published working-day schedule covers the year, 0 if "
                "answers for it are provisional.",
                labels=["year"],
            ),
        }

    def _store_rows(self, families: dict[str, GaugeMetricFamily]) -> None:
        batches, records, sets = schema.batches, schema.records, schema.exchange_sets
        with self._engine.connect() as connection:
            batch_rows = connection.execute(
                select(batches.c.state, func.count()).group_by(batches.c.state)
            ).all()
            record_rows = connection.execute(
                select(records.c.state, records.c.reasons, func.count()).group_by(
                    records.c.state, records.c.reasons
                )
            ).all()
            instruction_rows = connection.execute(
                select(sets.c.bank_code, sets.c.state, func.sum(sets.c.item_count))
                .where(sets.c.kind == SetKind.INSTRUCTION.value)
                .group_by(sets.c.bank_code, sets.c.state)
            ).all()

        for state, count in batch_rows:
            families["batches"].add_metric([code_label(state)], int(count))

        by_reason: dict[tuple[str, str], int] = {}
        for state, reasons, count in record_rows:
            key = (code_label(state), primary_reason(reasons or ""))
            by_reason[key] = by_reason.get(key, 0) + int(count)
        for (state, reason), count in sorted(by_reason.items()):
            families["records"].add_metric([state, reason], count)

        for bank, state, items in instruction_rows:
            families["instructions"].add_metric(
                [code_label(bank), code_label(state)], int(items or 0)
            )

    def _deadline_rows(self, families: dict[str, GaugeMetricFamily]) -> None:
        assert self._deadline_counts is not None
        rows = list(self._deadline_counts())

        for bank, kind, status, count in rows:
            if kind not in DEADLINE_KINDS or status not in DEADLINE_STATUSES:
                raise ValueError("deadline hook returned an unknown kind or status")
            families["deadlines"].add_metric(
                [code_label(bank), kind, status], int(count)
            )

    def _calendar_rows(self, families: dict[str, GaugeMetricFamily]) -> None:
        assert self._calendar_coverage is not None
        coverage = self._calendar_coverage()
        this_year = self._clock().astimezone(CHINA_STANDARD_TIME).year

        # A year the hook does not mention is not covered: the alert must
        # fire on a missing answer, not stay silent.
        for year in (this_year, this_year + 1):
            families["calendar"].add_metric(
                [str(year)], 1.0 if coverage.get(year, False) else 0.0
            )


# -- certificates and CRLs -------------------------------------------------------


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not values:
        return ""
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return constraints.value.ca


def organisation_name(cert: x509.Certificate) -> str:
    """The ``subject_CN`` label: an organisation, never a person (see above)."""
    if _is_ca(cert):
        return _common_name(cert.subject)
    try:
        identity = Identity.from_certificate(cert)
        signing = purpose_of(cert) is Purpose.SIGNING
    except IdentityError:
        return ""
    return f"{identity.role.value} {identity.org}" + (" signing" if signing else "")


def _certificate_key(cert: x509.Certificate) -> tuple[bytes, int]:
    return cert.issuer.public_bytes(), cert.serial_number


class SeenCertificates:
    """Client certificates seen in handshakes, most recently seen last.

    Bounded: past ``capacity`` entries the least recently seen is dropped, so
    a flood of distinct certificates (each one still had to chain to a
    trusted CA) cannot grow memory or the label set without limit.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._certificates: OrderedDict[tuple[bytes, int], x509.Certificate] = (
            OrderedDict()
        )

    def seen(self, cert: x509.Certificate) -> None:
        key = _certificate_key(cert)
        with self._lock:
            self._certificates[key] = cert
            self._certificates.move_to_end(key)
            while len(self._certificates) > self.capacity:
                self._certificates.popitem(last=False)

    def certificates(self) -> list[x509.Certificate]:
        with self._lock:
            return list(self._certificates.values())


class CertificateCollector(Collector):
    """x509-certificate-exporter families for every certificate we know of.

    Sources (the ``source`` label): ``gateway`` (the gateway's own TLS and
    signing certificates, from their files), ``trusted_ca`` (the CA bundle),
    ``issued`` (every certificate the development CA issued, when there is
    one) and ``seen_client`` (client certificates seen in handshakes).
    ``serial_number`` is decimal, as the exporter writes it; ``ykt certs`` and
    ``ykt keys`` show serials in hex.
    """

    def __init__(
        self,
        *,
        gateway_certificates: Sequence[Path],
        trust: TrustStore,
        dev_ca: DevelopmentCA | None = None,
        seen: SeenCertificates | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._gateway_certificates = list(gateway_certificates)
        self._trust = trust
        self._dev_ca = dev_ca
        self._seen = seen
        self._clock = clock

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return list(self._families().values())

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        cert_labels, crl_labels = list(_CERT_LABELS), list(_CRL_LABELS)
        return {
            "not_after": GaugeMetricFamily(
                "x509_cert_not_after",
                "Certificate notAfter, as a Unix timestamp.",
                labels=cert_labels,
            ),
            "not_before": GaugeMetricFamily(
                "x509_cert_not_before",
                "Certificate notBefore, as a Unix timestamp.",
                labels=cert_labels,
            ),
            "expired": GaugeMetricFamily(
                "x509_cert_expired",
                "1 if the certificate is past its notAfter.",
                labels=cert_labels,
            ),
            "crl_next_update": GaugeMetricFamily(
                "x509_crl_next_update",
                "CRL nextUpdate, as a Unix timestamp.",
                labels=crl_labels,
            ),
            "crl_stale": GaugeMetricFamily(
                "x509_crl_stale",
                "1 if the CRL is past nextUpdate or a trusted CA has none; calls "
                "from that CA's certificates are then refused.",
                labels=crl_labels,
            ),
        }

    def _sources(self) -> Iterator[tuple[str, x509.Certificate]]:
        for path in self._gateway_certificates:
            for cert in x509.load_pem_x509_certificates(path.read_bytes()):
                yield "gateway", cert
        for cert in self._trust.ca_certificates:
            yield "trusted_ca", cert
        if self._dev_ca is not None:
            for cert in self._dev_ca.issued():
                yield "issued", cert
        if self._seen is not None:
            for cert in self._seen.certificates():
                yield "seen_client", cert

    def collect(self) -> Iterable[GaugeMetricFamily]:
        families, status = self.read()
        return [*families, collector_up(status)]

    def read(self) -> tuple[list[GaugeMetricFamily], list[tuple[str, float]]]:
        families = self._families()
        ok = _guarded("certificates", self._read, families)
        return list(families.values()), [("certificates", ok)]

    def _read(self, families: dict[str, GaugeMetricFamily]) -> None:
        now = self._clock()

        done: set[tuple[str, bytes, int]] = set()
        for source, cert in self._sources():
            key = (source, *_certificate_key(cert))
            if key in done:
                continue
            done.add(key)
            labels = [
                organisation_name(cert),
                _common_name(cert.issuer),
                str(cert.serial_number),
                source,
            ]
            not_after = cert.not_valid_after_utc
            families["not_after"].add_metric(labels, not_after.timestamp())
            families["not_before"].add_metric(
                labels, cert.not_valid_before_utc.timestamp()
            )
            families["expired"].add_metric(labels, 1.0 if not_after <= now else 0.0)

        crls = self._trust.crls()
        for ca in self._trust.ca_certificates:
            labels = [_common_name(ca.subject), "trusted_ca"]
            crl = next((c for c in crls if c.issuer == ca.subject), None)
            next_update = crl.next_update_utc if crl is not None else None
            # As the trust store judges it: no CRL, or one past nextUpdate,
            # means calls from this CA's certificates are refused.
            stale = next_update is None or next_update <= now
            if next_update is not None:
                families["crl_next_update"].add_metric(labels, next_update.timestamp())
            families["crl_stale"].add_metric(labels, 1.0 if stale else 0.0)


# -- the gateway's metrics, in one place -----------------------------------------


class _ScrapeTime(Collector):
    """All scrape-time collectors of one gateway, with one ``ykt_collector_up``.

    One family name may appear only once in an exposition, so the collectors
    are read together and their status rows merged.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: list[StoreCollector | CertificateCollector] = []

    def add(self, part: StoreCollector | CertificateCollector) -> None:
        with self._lock:
            if any(type(p) is type(part) for p in self._parts):
                raise ValueError("this kind of collector is already watched")
            self._parts.append(part)

    def describe(self) -> Iterable[GaugeMetricFamily]:
        names = [collector_up([])]
        for part in StoreCollector, CertificateCollector:
            names += part._families().values()
        return names

    def collect(self) -> Iterable[GaugeMetricFamily]:
        with self._lock:
            parts = list(self._parts)

        families: list[GaugeMetricFamily] = []
        status: list[tuple[str, float]] = []
        for part in parts:
            part_families, part_status = part.read()
            families += part_families
            status += part_status

        return [*families, collector_up(status)]


class GatewayMetrics:
    """One registry holding every family above, and the counters to bump.

    ``registry`` is what the metrics HTTP endpoint serves
    (``prometheus_client.start_http_server(port, addr, registry=...)``).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.grpc = GrpcServerMetrics(self.registry)
        self.seen_certificates = SeenCertificates()
        self._scrape_time = _ScrapeTime()
        self.registry.register(self._scrape_time)
        self._dead_letters = Counter(
            "ykt_dead_letters",
            "Messages given up on after their retries, by agent bank and kind.",
            ("bank", "kind"),
            registry=self.registry,
        )
        self._conflicting_results = Counter(
            "ykt_conflicting_results",
            "Results refused because they contradict a recorded result.",
            ("bank",),
            registry=self.registry,
        )
        self._provisional_answers = Counter(
            "ykt_calendar_provisional_answers",
            "Working-day answers given for a year without a published schedule.",
            registry=self.registry,
        )
        self._refused_calls = Counter(
            "ykt_refused_calls",
            "Calls refused by the security interceptor, by reason.",
            ("reason",),
            registry=self.registry,
        )
        for reason in sorted(REFUSAL_REASONS):
            # Present at zero from the start, so rate() sees the first one.
            self._refused_calls.labels(reason)
        # Log lines the log guard refused because they carried personal data.
        self.registry.register(logs.RefusedRecordsCollector())

    def interceptor(self) -> MetricsInterceptor:
        return MetricsInterceptor(self.grpc)

    def watch_store(
        self,
        engine: Engine,
        *,
        deadline_counts: DeadlineCounts | None = None,
        calendar_coverage: CalendarCoverage | None = None,
        clock: Clock = utcnow,
    ) -> StoreCollector:
        collector = StoreCollector(
            engine,
            deadline_counts=deadline_counts,
            calendar_coverage=calendar_coverage,
            clock=clock,
        )
        self._scrape_time.add(collector)
        return collector

    def watch_certificates(
        self,
        *,
        gateway_certificates: Sequence[Path],
        trust: TrustStore,
        dev_ca: DevelopmentCA | None = None,
        clock: Clock = utcnow,
    ) -> CertificateCollector:
        collector = CertificateCollector(
            gateway_certificates=gateway_certificates,
            trust=trust,
            dev_ca=dev_ca,
            seen=self.seen_certificates,
            clock=clock,
        )
        self._scrape_time.add(collector)
        return collector

    # -- events the gateway reports ----------------------------------------------

    def dead_letter(self, bank: str, kind: str) -> None:
        self._dead_letters.labels(code_label(bank), code_label(kind)).inc()

    def conflicting_result(self, bank: str) -> None:
        self._conflicting_results.labels(code_label(bank)).inc()

    def calendar_provisional_answer(self) -> None:
        self._provisional_answers.inc()

    def refused_call(self, reason: str) -> None:
        """Count a refusal; ``reason`` is one of ``REFUSAL_REASONS``.

        Never raises: this runs inside the security interceptor, where an
        exception would turn a clean refusal into INTERNAL. An unknown reason
        is counted as "other" and logged.
        """
        if reason not in REFUSAL_REASONS:
            _logger.warning("unknown refusal reason counted as other")
            reason = "other"
        self._refused_calls.labels(reason).inc()

    def refusal_hook(self) -> Callable[[str, str], None]:
        """An ``on_refusal(method, why)`` callback for ``SecurityInterceptor``."""

        def on_refusal(method: str, why: str) -> None:
            self.refused_call(why)

        return on_refusal


__all__ = [
    "CertificateCollector",
    "GatewayMetrics",
    "GrpcServerMetrics",
    "MetricsInterceptor",
    "SeenCertificates",
    "StoreCollector",
    "code_label",
    "organisation_name",
    "primary_reason",
]
