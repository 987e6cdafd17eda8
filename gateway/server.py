"""The gateway process: gRPC services over mutual TLS, and its housekeeping.

Settings that matter for security are spelled out here, even where they are
gRPC's defaults, and tests assert them:
- client certificates are required (``require_client_authentication=True``);
- TLS 1.2 is gRPC core's minimum, and the cipher suites are restricted to
  ECDHE with AEAD (``gateway.tls``, applied before gRPC starts);
- message sizes are bounded explicitly in both directions;
- keepalive pings are bounded so idle or abusive peers cannot hold resources.

The server certificate, its key and the CA bundle are re-read when they
change on disk, so a renewed certificate needs no restart.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from sqlalchemy import select

from connectors.file_gateway import FileDelivery
from connectors.file_protocol import Style
from gateway import (
    audit,
    deadline_store,
    exchange,
    funds,
    personal_data,
    queries,
    registry,
    retention,
    submission,
)
from gateway.config import GatewayConfig
from gateway.core import Clock, GatewayCore, Settings, utcnow
from gateway.errors import InvalidArgumentError, PermissionDeniedError
from gateway.metrics import GatewayMetrics
from gateway.security import SecurityInterceptor, peer_identity
from gateway.states import SetKind
from gateway.store import db, schema
from gateway.workdays import WorkingCalendar
from keys.ca import DevelopmentCA
from keys.identity import Identity, IdentityError, purpose_of
from keys.keystore import LocalKeyStore
from keys.signing import Signer
from keys.trust import TrustStore
from ykt.v1 import services_pb2, services_pb2_grpc

_logger = logging.getLogger(__name__)

# The connector styles an agent bank may use (see connectors/).
FILE_STYLES = frozenset(style.value for style in Style)
CONNECTOR_NAMES = frozenset({"grpc-pull"}) | FILE_STYLES

MAX_MESSAGE_BYTES = 16 * 1024 * 1024

SERVER_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 30_000),
    ("grpc.http2.max_ping_strikes", 2),
    ("grpc.max_connection_idle_ms", 15 * 60_000),
]


class DepartmentServicer(services_pb2_grpc.DepartmentServiceServicer):
    def __init__(self, core: GatewayCore) -> None:
        self._core = core

    def SubmitBatch(  # noqa: N802
        self, request_iterator: Iterator[services_pb2.SubmitBatchRequest], context: Any
    ) -> services_pb2.SubmitBatchResponse:
        return submission.submit_batch(
            self._core, peer_identity(context), request_iterator
        )

    def GetBatch(  # noqa: N802
        self, request: services_pb2.GetBatchRequest, context: Any
    ) -> services_pb2.GetBatchResponse:
        return queries.get_batch(self._core, peer_identity(context), request.batch_id)

    def ListRecords(  # noqa: N802
        self, request: services_pb2.ListRecordsRequest, context: Any
    ) -> Iterator[services_pb2.ListRecordsResponse]:
        return queries.list_records(
            self._core, peer_identity(context), request.batch_id
        )

    def ValidateBatch(  # noqa: N802
        self,
        request_iterator: Iterator[services_pb2.ValidateBatchRequest],
        context: Any,
    ) -> Iterator[services_pb2.ValidateBatchResponse]:
        return submission.validate_batch(
            self._core, peer_identity(context), request_iterator
        )

    def GetRecordLineage(  # noqa: N802
        self, request: services_pb2.GetRecordLineageRequest, context: Any
    ) -> services_pb2.GetRecordLineageResponse:
        return queries.record_lineage(
            self._core, peer_identity(context), request.record_id
        )

    def RecordFundsRelease(  # noqa: N802
        self, request: services_pb2.RecordFundsReleaseRequest, context: Any
    ) -> services_pb2.RecordFundsReleaseResponse:
        released_at = (
            request.released_at.ToDatetime(tzinfo=dt.UTC)
            if request.HasField("released_at")
            else None
        )
        release = funds.record_release(
            self._core,
            peer_identity(context),
            request.batch_id,
            released_at,
            request.treasury_reference,
        )
        response = services_pb2.RecordFundsReleaseResponse(
            already_recorded=release.already_recorded,
            provisional=release.pay_by.provisional,
        )
        response.released_at.FromDatetime(release.released_at)
        response.pay_by.FromDatetime(release.pay_by.due)
        return response


class RegistryServicer(services_pb2_grpc.RegistryServiceServicer):
    def __init__(self, core: GatewayCore) -> None:
        self._core = core

    def DeclareAccount(  # noqa: N802
        self, request: services_pb2.DeclareAccountRequest, context: Any
    ) -> services_pb2.DeclareAccountResponse:
        summary = registry.declare(
            self._core, peer_identity(context), request.declaration
        )
        return services_pb2.DeclareAccountResponse(declaration=summary)

    def ReviewDeclaration(  # noqa: N802
        self, request: services_pb2.ReviewDeclarationRequest, context: Any
    ) -> services_pb2.ReviewDeclarationResponse:
        summary = registry.review(
            self._core,
            peer_identity(context),
            request.declaration_id,
            request.approve,
            request.note,
        )
        return services_pb2.ReviewDeclarationResponse(declaration=summary)

    def ConfirmDeclaration(  # noqa: N802
        self, request: services_pb2.ConfirmDeclarationRequest, context: Any
    ) -> services_pb2.ConfirmDeclarationResponse:
        summary = registry.confirm(
            self._core,
            peer_identity(context),
            request.declaration_id,
            request.approve,
            request.note,
        )
        return services_pb2.ConfirmDeclarationResponse(declaration=summary)

    def GetDeclaration(  # noqa: N802
        self, request: services_pb2.GetDeclarationRequest, context: Any
    ) -> services_pb2.GetDeclarationResponse:
        summary = registry.get(
            self._core, peer_identity(context), request.declaration_id
        )
        return services_pb2.GetDeclarationResponse(declaration=summary)


class BankServicer(services_pb2_grpc.BankServiceServicer):
    def __init__(self, core: GatewayCore) -> None:
        self._core = core

    def PullAccountChecks(  # noqa: N802
        self, request: services_pb2.PullAccountChecksRequest, context: Any
    ) -> services_pb2.PullAccountChecksResponse:
        sets = exchange.pull_sets(
            self._core, peer_identity(context), SetKind.ACCOUNT_CHECK, request.max_sets
        )
        return services_pb2.PullAccountChecksResponse(sets=sets)

    def PostAccountCheckResults(  # noqa: N802
        self, request: services_pb2.PostAccountCheckResultsRequest, context: Any
    ) -> services_pb2.PostAccountCheckResultsResponse:
        receipt = exchange.post_account_check_results(
            self._core, peer_identity(context), request.result_set
        )
        return services_pb2.PostAccountCheckResultsResponse(receipt=receipt)

    def PullInstructions(  # noqa: N802
        self, request: services_pb2.PullInstructionsRequest, context: Any
    ) -> services_pb2.PullInstructionsResponse:
        sets = exchange.pull_sets(
            self._core, peer_identity(context), SetKind.INSTRUCTION, request.max_sets
        )
        return services_pb2.PullInstructionsResponse(sets=sets)

    def Acknowledge(  # noqa: N802
        self, request: services_pb2.AcknowledgeRequest, context: Any
    ) -> services_pb2.AcknowledgeResponse:
        when = exchange.acknowledge(
            self._core, peer_identity(context), request.set_id, request.lease_id
        )
        response = services_pb2.AcknowledgeResponse()
        response.acknowledged_at.FromDatetime(when)
        return response

    def PostResults(  # noqa: N802
        self, request: services_pb2.PostResultsRequest, context: Any
    ) -> services_pb2.PostResultsResponse:
        receipt = exchange.post_results(
            self._core, peer_identity(context), request.result_set
        )
        return services_pb2.PostResultsResponse(receipt=receipt)


class AdminServicer(services_pb2_grpc.AdminServiceServicer):
    def __init__(self, core: GatewayCore, dev_ca: DevelopmentCA | None) -> None:
        self._core = core
        self._dev_ca = dev_ca

    def ListPolicies(  # noqa: N802
        self, request: services_pb2.ListPoliciesRequest, context: Any
    ) -> services_pb2.ListPoliciesResponse:
        with self._core.engine.connect() as connection:
            rows = connection.execute(
                select(schema.policies).order_by(schema.policies.c.policy_code)
            ).all()
        return services_pb2.ListPoliciesResponse(
            policies=[
                services_pb2.Policy(
                    policy_code=r.policy_code,
                    policy_name=r.policy_name,
                    department=r.department,
                    department_name=r.department_name,
                    period_kind=r.period_kind,
                    max_amount_fen=r.max_amount_fen,
                    requires_list=r.requires_list or "",
                    excludes_list=r.excludes_list or "",
                )
                for r in rows
            ]
        )

    def PutPolicy(  # noqa: N802
        self, request: services_pb2.PutPolicyRequest, context: Any
    ) -> services_pb2.PutPolicyResponse:
        policy = request.policy
        if policy.period_kind not in ("year", "month") or policy.max_amount_fen <= 0:
            raise InvalidArgumentError(
                "a policy needs a period kind and a positive limit"
            )
        values = {
            "policy_name": policy.policy_name,
            "department": policy.department,
            "department_name": policy.department_name,
            "period_kind": policy.period_kind,
            "max_amount_fen": policy.max_amount_fen,
            "requires_list": policy.requires_list or None,
            "excludes_list": policy.excludes_list or None,
        }
        table = schema.policies
        with self._core.engine.begin() as connection:
            exists = connection.execute(
                select(table.c.policy_code).where(
                    table.c.policy_code == policy.policy_code
                )
            ).first()
            if exists:
                connection.execute(
                    table.update().where(table.c.policy_code == policy.policy_code),
                    values,
                )
            else:
                connection.execute(
                    table.insert().values(policy_code=policy.policy_code, **values)
                )
            self._core.audit(
                connection,
                peer_identity(context).org,
                "policy.stored",
                policy.policy_code,
                f"period={policy.period_kind} max_amount_fen={policy.max_amount_fen}",
            )
        _logger.info("policy stored", extra={"policy_code": policy.policy_code})
        return services_pb2.PutPolicyResponse(policy=policy)

    def SetAgentBank(  # noqa: N802
        self, request: services_pb2.SetAgentBankRequest, context: Any
    ) -> services_pb2.SetAgentBankResponse:
        # Art. 17: a county's own finance bureau chooses its agent banks.
        if registry.county_of(peer_identity(context)) != request.county:
            raise PermissionDeniedError("a finance bureau chooses only for its county")
        if request.connector not in CONNECTOR_NAMES:
            raise InvalidArgumentError("unknown connector")
        table = schema.agent_banks
        with self._core.engine.begin() as connection:
            known = connection.execute(
                select(schema.banks.c.bank_code).where(
                    schema.banks.c.bank_code == request.bank_code
                )
            ).one_or_none()
            if known is None:
                raise InvalidArgumentError("unknown bank")
            connection.execute(
                table.delete().where(
                    table.c.county == request.county,
                    table.c.policy_code == request.policy_code,
                )
            )
            connection.execute(
                table.insert().values(
                    county=request.county,
                    policy_code=request.policy_code,
                    bank_code=request.bank_code,
                    connector=request.connector,
                )
            )
            self._core.audit(
                connection,
                peer_identity(context).org,
                "agent_bank.chosen",
                f"{request.county}/{request.policy_code}",
                f"bank={request.bank_code} connector={request.connector}",
            )
        _logger.info(
            "agent bank chosen",
            extra={"county": request.county, "policy_code": request.policy_code},
        )
        return services_pb2.SetAgentBankResponse()

    def GetRecord(  # noqa: N802
        self, request: services_pb2.GetRecordRequest, context: Any
    ) -> services_pb2.GetRecordResponse:
        return personal_data.get_record(
            self._core, peer_identity(context), request.record_id, request.unmask
        )

    def ListDeadlines(  # noqa: N802
        self, request: services_pb2.ListDeadlinesRequest, context: Any
    ) -> services_pb2.ListDeadlinesResponse:
        views = deadline_store.list_deadlines(
            self._core,
            bank_code=request.bank_code or None,
            at_risk_only=request.at_risk_only,
            breached_only=request.breached_only,
        )
        response = services_pb2.ListDeadlinesResponse()
        for view in views:
            item = response.deadlines.add(
                kind=view.kind,
                bank_code=view.bank_code,
                subject_id=view.subject_id,
                status=view.status.value,
                provisional=view.provisional,
                breached=view.breached,
            )
            item.due_at.FromDatetime(view.due_at)
            if view.met_at is not None:
                item.met_at.FromDatetime(view.met_at)
        return response

    def ListCertificates(  # noqa: N802
        self, request: services_pb2.ListCertificatesRequest, context: Any
    ) -> services_pb2.ListCertificatesResponse:
        certs = list(self._core.trust.ca_certificates)
        if self._dev_ca is not None:
            certs += self._dev_ca.issued()
        response = services_pb2.ListCertificatesResponse()
        revoked = {
            serial
            for crl in self._core.trust.crls()
            for serial in (r.serial_number for r in crl)
        }
        for cert in certs:
            item = response.certificates.add(
                serial_number=f"{cert.serial_number:x}",
                subject=cert.subject.rfc4514_string(),
                revoked=cert.serial_number in revoked,
            )
            item.not_after.FromDatetime(cert.not_valid_after_utc)
            try:
                identity = Identity.from_certificate(cert)
                item.role, item.organisation = identity.role.value, identity.org
                item.purpose = purpose_of(cert).value
            except IdentityError:
                item.purpose = "ca"
        return response


def _read(path: Path) -> bytes:
    return path.read_bytes()


def server_credentials(config: GatewayConfig) -> grpc.ServerCredentials:
    """mTLS credentials that re-read the certificate files when they change."""
    paths = (config.tls_key, config.tls_cert, config.ca_bundle)

    def stamp() -> tuple[int, ...]:
        return tuple(os.stat(p).st_mtime_ns for p in paths)

    def configuration() -> Any:
        return grpc.ssl_server_certificate_configuration(
            [(_read(config.tls_key), _read(config.tls_cert))],
            root_certificates=_read(config.ca_bundle),
        )

    state = {"stamp": stamp()}
    lock = threading.Lock()

    def fetch() -> Any:
        with lock:
            current = stamp()
            if current == state["stamp"]:
                return None
            state["stamp"] = current
            _logger.warning("server certificate files changed; reloading")
            return configuration()

    return grpc.dynamic_ssl_server_credentials(
        configuration(), fetch, require_client_authentication=True
    )


class Gateway:
    """A running gateway: the gRPC server and its background duties."""

    def __init__(
        self,
        config: GatewayConfig,
        core: GatewayCore,
        server: grpc.Server,
        port: int,
        metrics: GatewayMetrics,
    ):
        self.config = config
        self.core = core
        self.server = server
        self.port = port
        self.metrics = metrics
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start_housekeeping(self, dev_ca: DevelopmentCA | None) -> None:
        def watch_deadlines() -> None:
            # Idempotent on every replica: a breach is set once, by whoever
            # sees it first.
            rounds = 0
            while not self._stop.wait(60):
                try:
                    deadline_store.record_breaches(self.core)
                    audit.checkpoint(
                        self.core.engine, self.core.signer, self.core.now()
                    )
                    if rounds % 60 == 0:  # hourly
                        retention.run(self.core)
                except Exception:
                    _logger.exception("housekeeping round failed; retrying")
                rounds += 1

        watcher = threading.Thread(
            target=watch_deadlines, name="deadlines", daemon=True
        )
        watcher.start()
        self._threads.append(watcher)
        if self.config.exchange_directory is not None:
            files = threading.Thread(
                target=self._serve_file_banks, name="file-banks", daemon=True
            )
            files.start()
            self._threads.append(files)
        if dev_ca is None:
            return

        def refresh_crl() -> None:
            # DEVELOPMENT ONLY: the dev CA lives here, so keep its CRL fresh.
            while not self._stop.wait(300):
                dev_ca.write_crl()

        thread = threading.Thread(target=refresh_crl, name="dev-crl", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _serve_file_banks(self) -> None:
        """Start one file delivery per file-connected agent bank, as the
        agent-bank list names them, and pick up banks added later."""
        assert self.config.exchange_directory is not None
        serving: set[str] = set()
        while not self._stop.is_set():
            with self.core.engine.connect() as connection:
                rows = connection.execute(
                    select(
                        schema.agent_banks.c.bank_code, schema.agent_banks.c.connector
                    ).distinct()
                ).all()
            for bank_code, connector in rows:
                if connector not in FILE_STYLES or bank_code in serving:
                    continue
                delivery = FileDelivery(
                    self.core,
                    bank_code,
                    Style(connector),
                    self.config.exchange_directory,
                    keep_files=self.config.keep_exchange_files,
                )
                thread = threading.Thread(
                    target=delivery.run_forever,
                    args=(self._stop,),
                    name=f"files-{bank_code}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)
                serving.add(bank_code)
                _logger.info("serving a file-connected bank", extra={"bank": bank_code})
            self._stop.wait(5)

    def stop(self, grace: float = 2.0) -> None:
        self._stop.set()
        self.server.stop(grace).wait()
        try:
            audit.checkpoint(self.core.engine, self.core.signer, self.core.now())
        except Exception:
            _logger.exception("could not sign the last audit checkpoint")
        self.core.engine.dispose()

    def wait(self) -> None:
        self.server.wait_for_termination()


def _metrics_for(
    core: GatewayCore, config: GatewayConfig, dev_ca: DevelopmentCA | None
) -> GatewayMetrics:
    metrics = GatewayMetrics()
    core.on_provisional_deadline = metrics.calendar_provisional_answer
    core.on_conflicting_result = metrics.conflicting_result
    core.on_dead_letter = metrics.dead_letter

    def coverage() -> dict[int, bool]:
        year = core.now().year
        return {y: core.calendar.covers(y) for y in (year, year + 1)}

    metrics.watch_store(
        core.engine,
        deadline_counts=lambda: deadline_store.deadline_counts(core),
        calendar_coverage=coverage,
        clock=core.clock,
    )
    metrics.watch_certificates(
        gateway_certificates=[config.tls_cert, config.signing_cert],
        trust=core.trust,
        dev_ca=dev_ca,
        clock=core.clock,
    )
    return metrics


def open_core(
    config: GatewayConfig,
    *,
    settings: Settings | None = None,
    clock: Clock | None = None,
) -> GatewayCore:
    """The gateway's store, keys and trust, migrated and ready; no server.

    For ``build`` and for commands that work on the store directly
    (``ykt retention run``).
    """
    engine = db.connect(config.database_url)
    db.migrate(engine)
    clock = clock or utcnow
    return GatewayCore(
        engine=engine,
        keystore=LocalKeyStore(config.keys_directory),
        trust=TrustStore(config.ca_bundle, config.crls, clock=clock),
        signer=Signer.load(config.signing_cert, config.signing_key),
        clock=clock,
        settings=settings or Settings(),
        calendar=WorkingCalendar.load(config.calendar_schedules),
    )


def build(
    config: GatewayConfig,
    *,
    settings: Settings | None = None,
    clock: Clock | None = None,
) -> Gateway:
    """Open the store, migrate it, and bind the server (not yet started)."""
    core = open_core(config, settings=settings, clock=clock)
    trust = core.trust
    dev_ca = DevelopmentCA(config.dev_ca_directory) if config.dev_ca_directory else None
    metrics = _metrics_for(core, config, dev_ca)

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="rpc"),
        # Metrics first, so they also count the calls security refuses.
        interceptors=[
            metrics.interceptor(),
            SecurityInterceptor(
                trust,
                on_refusal=metrics.refusal_hook(),
                on_certificate=metrics.seen_certificates.seen,
            ),
        ],
        options=SERVER_OPTIONS,
        maximum_concurrent_rpcs=64,
    )
    services_pb2_grpc.add_DepartmentServiceServicer_to_server(
        DepartmentServicer(core), server
    )
    services_pb2_grpc.add_BankServiceServicer_to_server(BankServicer(core), server)
    services_pb2_grpc.add_AdminServiceServicer_to_server(
        AdminServicer(core, dev_ca), server
    )
    services_pb2_grpc.add_RegistryServiceServicer_to_server(
        RegistryServicer(core), server
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_secure_port(config.listen, server_credentials(config))
    if port == 0:
        raise RuntimeError("could not bind the gateway's listen address")
    for name in (
        "",
        *(s.full_name for s in services_pb2.DESCRIPTOR.services_by_name.values()),
    ):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    gateway = Gateway(config, core, server, port, metrics)
    gateway.start_housekeeping(dev_ca)
    return gateway


__all__ = ["Gateway", "build"]
