"""The authorization matrix: every RPC, called by every kind of caller.

``EXPECTED`` is the one table of what each caller gets from each RPC. It is
written from the municipal measures' division of duties, not copied from
``gateway.security.AUTHORIZATION`` (which this module never imports), so a
slip in the production table shows up as a disagreement here:

- departments submit and validate batches and read their own (Art. 5, 15,
  16), and record that the treasury released a batch's funds (Art. 19);
- the finance bureau keeps the policy list (Art. 6), chooses a county's agent
  bank (Art. 17), confirms account changes (Art. 14), records funds releases
  and oversees the whole system, so it reads batches, certificates and
  deadlines;
- implementing units declare and review one-card accounts (Art. 11, 14);
- agent banks verify accounts, take instructions and report results
  (Art. 18, 20-22), and nothing else;
- auditors read; the gateway's own identity calls nothing but the public
  policy list and health.

Columns: the six roles, each with a certificate of its home organisation;
then callers that must never get through: no client certificate, an expired
one, one from an unknown CA (all three fail the TLS handshake: UNAVAILABLE),
a revoked one (UNAUTHENTICATED); and last, ``other-org``: a certificate of
the right role whose URI SAN names another organisation than the one the
request acts for (another county's department, another bank, another
county's finance bureau or unit).

"Allowed" means the call got past authorization: any status other than
PERMISSION_DENIED, UNAUTHENTICATED or UNAVAILABLE (typically
INVALID_ARGUMENT or NOT_FOUND for the minimal requests sent here). "Empty"
means allowed, but none of the other bank's sets came back, while the store
shows that the other bank had sets ready.

RPCs are enumerated from the service descriptors of every ``ykt.v1`` proto
module and of gRPC health, so an RPC added to the contract without a row here
fails ``test_every_rpc_has_a_row``. Cells whose expectation and the gateway
disagree for a reason we believe is a defect are marked xfail(strict) with
"FINDING:" in ``FINDINGS``; when the gateway is fixed, the strict xfail turns
red and the mark must go.

One gateway serves the whole module (its state is built once by ``world``);
the TLS-level callers reuse one channel each.
"""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2
from sqlalchemy import func, select

import ykt.v1
from gateway.client import (
    ClientCredentials,
    build_submission,
    open_channel,
    submit,
)
from gateway.core import GATEWAY_AUDIENCE, Clock
from gateway.envelope import seal
from gateway.states import SetKind, SetState
from gateway.store import schema
from gateway.tls import restrict_cipher_suites
from keys.ca import DevelopmentCA, write_credentials
from keys.identity import Identity, Role
from tests import conftest
from tests.conftest import Running
from ykt.v1 import batch_pb2, exchange_pb2, registry_pb2, services_pb2

restrict_cipher_suites()

# -- the table -------------------------------------------------------------------

OK = "allowed"
EMPTY = "empty"
PD = grpc.StatusCode.PERMISSION_DENIED
UA = grpc.StatusCode.UNAUTHENTICATED
UV = grpc.StatusCode.UNAVAILABLE
NF = grpc.StatusCode.NOT_FOUND

Expectation = str | grpc.StatusCode

ROLE_COLUMNS = ("department", "bank", "finance", "unit", "auditor", "gateway")
COLUMNS = (*ROLE_COLUMNS, "no-cert", "expired", "revoked", "unknown-ca", "other-org")

# fmt: off
TABLE: dict[str, dict[str, tuple[Expectation, ...]]] = {
    # columns:              dept bank fin unit aud gw   no-cert exp rev unk-ca  other
    "ykt.v1.DepartmentService": {
        "SubmitBatch":        (OK, PD, PD, PD, PD, PD,  UV, UV, UA, UV,  PD),
        "GetBatch":           (OK, PD, OK, PD, OK, PD,  UV, UV, UA, UV,  NF),
        "ListRecords":        (OK, PD, OK, PD, OK, PD,  UV, UV, UA, UV,  NF),
        "ValidateBatch":      (OK, PD, PD, PD, PD, PD,  UV, UV, UA, UV,  PD),
        "GetRecordLineage":   (OK, PD, OK, PD, OK, PD,  UV, UV, UA, UV,  NF),
        "RecordFundsRelease": (OK, PD, OK, PD, PD, PD,  UV, UV, UA, UV,  NF),
    },
    "ykt.v1.BankService": {
        "PullAccountChecks":  (PD, OK, PD, PD, PD, PD,  UV, UV, UA, UV,  EMPTY),
        "PostAccountCheckResults":
                              (PD, OK, PD, PD, PD, PD,  UV, UV, UA, UV,  NF),
        "PullInstructions":   (PD, OK, PD, PD, PD, PD,  UV, UV, UA, UV,  EMPTY),
        "Acknowledge":        (PD, OK, PD, PD, PD, PD,  UV, UV, UA, UV,  NF),
        "PostResults":        (PD, OK, PD, PD, PD, PD,  UV, UV, UA, UV,  NF),
    },
    "ykt.v1.AdminService": {
        "ListPolicies":       (OK, OK, OK, OK, OK, OK,  UV, UV, UA, UV,  OK),
        "PutPolicy":          (PD, PD, OK, PD, PD, PD,  UV, UV, UA, UV,  OK),
        "SetAgentBank":       (PD, PD, OK, PD, PD, PD,  UV, UV, UA, UV,  PD),
        "ListCertificates":   (PD, PD, OK, PD, OK, PD,  UV, UV, UA, UV,  OK),
        "ListDeadlines":      (PD, PD, OK, PD, OK, PD,  UV, UV, UA, UV,  OK),
        "GetRecord":          (OK, PD, OK, PD, OK, PD,  UV, UV, UA, UV,  NF),
    },
    "ykt.v1.RegistryService": {
        "DeclareAccount":     (PD, PD, PD, OK, PD, PD,  UV, UV, UA, UV,  OK),
        "ReviewDeclaration":  (PD, PD, PD, OK, PD, PD,  UV, UV, UA, UV,  NF),
        "ConfirmDeclaration": (PD, PD, OK, PD, PD, PD,  UV, UV, UA, UV,  NF),
        "GetDeclaration":     (PD, PD, OK, OK, OK, PD,  UV, UV, UA, UV,  NF),
    },
    "grpc.health.v1.Health": {
        "Check":              (OK, OK, OK, OK, OK, OK,  UV, UV, UA, UV,  OK),
        "List":               (OK, OK, OK, OK, OK, OK,  UV, UV, UA, UV,  OK),
        "Watch":              (OK, OK, OK, OK, OK, OK,  UV, UV, UA, UV,  OK),
    },
}
# fmt: on
EXPECTED = {
    f"{service}/{method}": row
    for service, rows in TABLE.items()
    for method, row in rows.items()
}

# Cells where the gateway and the table disagree, and the table is right:
# (rpc, column) -> "FINDING: what the gateway does, and what it should do".
# Each becomes xfail(strict), so the fix turns it red and the entry must go.
# Empty now: the two findings this matrix first raised (SetAgentBank across
# counties, Health/List denied to everyone) are fixed; docs/security-testing.md
# keeps their record.
FINDINGS: dict[tuple[str, str], str] = {}

HOME_ORG = {
    Role.DEPARTMENT: "500154-NYNC",
    Role.BANK: "CQCB",
    Role.FINANCE: "500154-CZJ",
    Role.UNIT: "500154-001",
    Role.AUDITOR: "audit",
    Role.GATEWAY: "gateway",
}
OTHER_ORG = {
    Role.DEPARTMENT: "500110-NYNC",
    Role.BANK: "CQCB",
    Role.FINANCE: "500110-CZJ",
    Role.UNIT: "500110-001",
    Role.AUDITOR: "audit2",
    Role.GATEWAY: "gateway2",
}
# The bank whose sets the other-org bank tries to reach.
OWNER_BANK = "CQRCB"
OWNER_DEPARTMENT = "500154-NYNC"


# -- the RPCs --------------------------------------------------------------------


def all_methods() -> dict[str, MethodDescriptor]:
    """Every RPC of every ``ykt.v1`` service module, and gRPC health."""
    modules = [health_pb2]
    for info in pkgutil.iter_modules(ykt.v1.__path__):
        if info.name.endswith("_pb2"):
            modules.append(importlib.import_module(f"ykt.v1.{info.name}"))
    methods: dict[str, MethodDescriptor] = {}
    for module in modules:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                methods[f"{service.full_name}/{method.name}"] = method
    return methods


METHODS = all_methods()


def invoke(
    channel: grpc.Channel, method: MethodDescriptor, request: Any
) -> tuple[grpc.StatusCode, Any]:
    """Call any RPC with a message (or a list, for client streams).

    For a response stream only the first message is read, then the call is
    cancelled: Health/Watch never ends on its own.
    """
    path = f"/{method.containing_service.full_name}/{method.name}"
    response_class = message_factory.GetMessageClass(method.output_type)
    kwargs: dict[str, Any] = {
        "request_serializer": lambda m: m.SerializeToString(),
        "response_deserializer": response_class.FromString,
    }
    try:
        if not method.client_streaming and not method.server_streaming:
            return grpc.StatusCode.OK, channel.unary_unary(path, **kwargs)(
                request, timeout=30
            )
        if method.client_streaming and not method.server_streaming:
            return grpc.StatusCode.OK, channel.stream_unary(path, **kwargs)(
                iter(request), timeout=30
            )
        if method.client_streaming:
            call = channel.stream_stream(path, **kwargs)(iter(request), timeout=30)
        else:
            call = channel.unary_stream(path, **kwargs)(request, timeout=30)
        first = next(call, None)
        call.cancel()
        return grpc.StatusCode.OK, first
    except grpc.RpcError as exc:
        return exc.code(), None


def minimal_request(method: MethodDescriptor) -> Any:
    """An empty request: enough to reach authorization, harmless beyond it."""
    message = message_factory.GetMessageClass(method.input_type)()
    if method.name == "SetAgentBank":
        # The choice the reference data already holds: allowed calls rewrite
        # it with the same values instead of adding a junk row.
        message = services_pb2.SetAgentBankRequest(
            county="500154",
            policy_code="CQ-NY-001",
            bank_code=OWNER_BANK,
            connector="grpc-pull",
        )
    return [message] if method.client_streaming else message


# -- a gateway for the module ----------------------------------------------------


@dataclass
class OffsetClock:
    """The gateway's injected clock: real time plus an offset tests can move."""

    offset: dt.timedelta = field(default_factory=dt.timedelta)

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset


def start_gateway(base: Path, clock: Clock | None = None) -> Running:
    """What ``tests.conftest.running`` builds, for a module and with a clock."""
    return conftest.start_gateway(base, None, clock)


def records(persons: list[Any], first_row: int = 1) -> list[batch_pb2.PaymentRecord]:
    return [
        batch_pb2.PaymentRecord(
            row=first_row + i,
            name=p.name,
            id_number=p.id_number,
            account_number=p.account,
            amount="100.00",
            bank_name="重庆农村商业银行",
        )
        for i, p in enumerate(persons)
    ]


def submission(
    credentials: ClientCredentials,
    batch_id: str,
    persons: list[Any],
    *,
    county: str = "500154",
    dry_run: bool = False,
) -> list[services_pb2.SubmitBatchRequest]:
    return build_submission(
        credentials.signer(),
        batch_id=batch_id,
        county=county,
        department="NYNC",
        policy_code="CQ-NY-001",
        period="2026",
        records=records(persons),
        dry_run=dry_run,
    )


def bank_answer(
    signer_credentials: ClientCredentials, message: Any, subject_id: str
) -> Any:
    return seal(
        signer_credentials.signer(),
        message,
        audience=GATEWAY_AUDIENCE,
        subject_id=subject_id,
        now=dt.datetime.now(dt.UTC),
    )


@dataclass
class World:
    """A gateway with state worth reaching for, and a channel per caller."""

    running: Running
    base: Path
    # Batch xa: checks answered, funds released, instruction set leased to
    # OWNER_BANK. Batch xb: instruction set READY for OWNER_BANK. Batch xc:
    # account-check set READY for OWNER_BANK.
    check_set_id: str = ""
    leased_set_id: str = ""
    lease_id: str = ""
    instruction_id: str = ""
    declaration_id: str = ""
    _channels: dict[str, grpc.Channel] = field(default_factory=dict)

    def _channel(self, key: str, make: Callable[[], ClientCredentials]) -> Any:
        if key not in self._channels:
            self._channels[key] = open_channel(self.running.target, make(), timeout=30)
        return self._channels[key]

    def channel_for(self, column: str, role: Role) -> grpc.Channel:
        running = self.running
        key = f"{column}/{role.value}"
        if column in ROLE_COLUMNS:
            return self._channel(key, lambda: running.client(role, HOME_ORG[role]))
        if column == "other-org":
            return self._channel(key, lambda: running.client(role, OTHER_ORG[role]))
        if column == "expired":
            now = dt.datetime.now(dt.UTC)
            return self._channel(
                key,
                lambda: running.client(
                    role,
                    HOME_ORG[role],
                    not_before=now - dt.timedelta(days=30),
                    not_after=now - dt.timedelta(days=1),
                ),
            )
        if column == "revoked":
            return self._channel(key, lambda: self._revoked(role))
        if column == "unknown-ca":
            return self._channel(key, lambda: self._stranger(role))
        assert column == "no-cert"
        if key not in self._channels:
            self._channels[key] = grpc.secure_channel(
                running.target,
                grpc.ssl_channel_credentials(
                    root_certificates=running.ca.cert_pem_bytes()
                ),
            )
        return self._channels[key]

    def _revoked(self, role: Role) -> ClientCredentials:
        from cryptography import x509

        credentials = self.running.client(role, HOME_ORG[role])
        cert = x509.load_pem_x509_certificate(credentials.cert)
        self.running.ca.revoke(cert.serial_number)
        return credentials

    def _stranger(self, role: Role) -> ClientCredentials:
        stranger = DevelopmentCA.open_or_create(self.base / "stranger-ca")
        directory = self.base / "stranger" / f"{role.value}-{uuid.uuid4().hex[:6]}"
        write_credentials(
            stranger.dev_generate_credentials(Identity(role, HOME_ORG[role])),
            self.running.ca.cert,  # trusts the gateway; the gateway trusts not it
            directory,
        )
        return ClientCredentials(directory)

    def ready_sets(self, kind: SetKind) -> int:
        table = schema.exchange_sets
        with self.running.gateway.core.engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).where(
                        table.c.bank_code == OWNER_BANK,
                        table.c.kind == kind.value,
                        table.c.state == SetState.READY.value,
                    )
                ).scalar_one()
            )

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()


def build_world(running: Running, base: Path) -> World:
    world = World(running, base)
    department = running.client(Role.DEPARTMENT, OWNER_DEPARTMENT)
    bank = running.client(Role.BANK, OWNER_BANK)
    persons = running.persons
    with open_channel(running.target, department) as channel:
        submit(channel, submission(department, "xa", persons[0:5]))
        submit(channel, submission(department, "xb", persons[5:10]))

    # The owner bank confirms every account: instruction sets, held.
    with open_channel(running.target, bank) as channel:
        pulled = invoke(
            channel,
            METHODS["ykt.v1.BankService/PullAccountChecks"],
            services_pb2.PullAccountChecksRequest(max_sets=50),
        )[1]
        assert len(pulled.sets) == 2, "both batches should have a check set"
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
            code, _ = invoke(
                channel,
                METHODS["ykt.v1.BankService/PostAccountCheckResults"],
                services_pb2.PostAccountCheckResultsRequest(
                    result_set=bank_answer(
                        bank, answer, f"{checks.header.subject_id}.answer"
                    )
                ),
            )
            assert code is grpc.StatusCode.OK
        world.check_set_id = "xa.c0"

    # Funds reach the bank; the bank leases xa's instructions only.
    with open_channel(running.target, department) as channel:
        for batch_id in ("xa", "xb"):
            code, _ = invoke(
                channel,
                METHODS["ykt.v1.DepartmentService/RecordFundsRelease"],
                services_pb2.RecordFundsReleaseRequest(
                    batch_id=batch_id, treasury_reference=f"T-{batch_id}"
                ),
            )
            assert code is grpc.StatusCode.OK
        submit(channel, submission(department, "xc", persons[10:15]))
    with open_channel(running.target, bank) as channel:
        code, pulled = invoke(
            channel,
            METHODS["ykt.v1.BankService/PullInstructions"],
            services_pb2.PullInstructionsRequest(max_sets=1),
        )
        assert code is grpc.StatusCode.OK
        leased = pulled.sets[0]
        instructions = exchange_pb2.InstructionSet.FromString(leased.set.payload)
        world.leased_set_id = instructions.header.subject_id
        world.lease_id = leased.lease_id
        world.instruction_id = instructions.instructions[0].instruction_id
    assert world.leased_set_id.startswith("xa.")

    # A unit of county 500154 declares an account.
    unit = running.client(Role.UNIT, HOME_ORG[Role.UNIT])
    person = persons[20]
    with open_channel(running.target, unit) as channel:
        code, declared = invoke(
            channel,
            METHODS["ykt.v1.RegistryService/DeclareAccount"],
            services_pb2.DeclareAccountRequest(
                declaration=registry_pb2.AccountDeclaration(
                    id_number=person.id_number,
                    name=person.name,
                    bank_code=OWNER_BANK,
                    account_number=person.account,
                    account_kind="社保卡",
                    application_reference="APP-0001",
                )
            ),
        )
    assert code is grpc.StatusCode.OK, code
    world.declaration_id = declared.declaration.declaration_id
    return world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("authz")
    running = start_gateway(base)
    built = build_world(running, base)
    yield built
    built.close()
    running.gateway.stop(0)


# -- requests that act for another organisation ----------------------------------


def other_org_request(world: World, rpc: str) -> Any:
    """The request a caller of another organisation sends against the owner's data.

    RPCs whose requests name no organisation's data get their minimal request.
    """
    running = world.running
    other_department = running.client(Role.DEPARTMENT, OTHER_ORG[Role.DEPARTMENT])
    other_bank = running.client(Role.BANK, OTHER_ORG[Role.BANK])
    if rpc == "ykt.v1.DepartmentService/SubmitBatch":
        return submission(other_department, "xz", running.persons[30:32])
    if rpc == "ykt.v1.DepartmentService/ValidateBatch":
        requests = submission(
            other_department, "xz", running.persons[30:32], dry_run=True
        )
        return [
            services_pb2.ValidateBatchRequest.FromString(r.SerializeToString())
            for r in requests
        ]
    if rpc in (
        "ykt.v1.DepartmentService/GetBatch",
        "ykt.v1.DepartmentService/ListRecords",
    ):
        return message_factory.GetMessageClass(METHODS[rpc].input_type)(batch_id="xa")
    if rpc == "ykt.v1.DepartmentService/GetRecordLineage":
        return services_pb2.GetRecordLineageRequest(record_id="xa.r1")
    if rpc == "ykt.v1.DepartmentService/RecordFundsRelease":
        return services_pb2.RecordFundsReleaseRequest(
            batch_id="xc", treasury_reference="T-other"
        )
    if rpc == "ykt.v1.BankService/PostAccountCheckResults":
        answer = exchange_pb2.AccountCheckResultSet(check_set_id=world.check_set_id)
        answer.results.add(
            check_id="xa.r1", status=exchange_pb2.ACCOUNT_CHECK_STATUS_NOT_FOUND
        )
        return services_pb2.PostAccountCheckResultsRequest(
            result_set=bank_answer(other_bank, answer, "other.answer")
        )
    if rpc == "ykt.v1.BankService/Acknowledge":
        return services_pb2.AcknowledgeRequest(
            set_id=world.leased_set_id, lease_id=world.lease_id
        )
    if rpc == "ykt.v1.BankService/PostResults":
        results = exchange_pb2.ResultSet()
        results.results.add(
            instruction_id=world.instruction_id,
            status=exchange_pb2.RESULT_STATUS_FAILED,
            reason_code="ACCOUNT_CLOSED",
        )
        return services_pb2.PostResultsRequest(
            result_set=bank_answer(other_bank, results, "other.results")
        )
    if rpc.startswith("ykt.v1.BankService/Pull"):
        return message_factory.GetMessageClass(METHODS[rpc].input_type)(max_sets=50)
    if rpc in (
        "ykt.v1.RegistryService/ReviewDeclaration",
        "ykt.v1.RegistryService/ConfirmDeclaration",
    ):
        return message_factory.GetMessageClass(METHODS[rpc].input_type)(
            declaration_id=world.declaration_id, approve=True
        )
    if rpc == "ykt.v1.RegistryService/GetDeclaration":
        return services_pb2.GetDeclarationRequest(declaration_id=world.declaration_id)
    return minimal_request(METHODS[rpc])


# The role whose certificate acts for another organisation, per RPC.
OTHER_ORG_ROLE = {
    "ykt.v1.RegistryService/ConfirmDeclaration": Role.FINANCE,
    "ykt.v1.RegistryService/GetDeclaration": Role.UNIT,
}


def acting_role(rpc: str, column: str) -> Role:
    """The role of the certificate used for a cell."""
    if column in ROLE_COLUMNS:
        return Role(column)
    if column == "other-org" and rpc in OTHER_ORG_ROLE:
        return OTHER_ORG_ROLE[rpc]
    row = EXPECTED[rpc]
    # An allowed role, so that only the column's defect can explain a refusal.
    for role_column, expected in zip(ROLE_COLUMNS, row, strict=False):
        if expected == OK:
            return Role(role_column)
    return Role.DEPARTMENT


# -- the tests -------------------------------------------------------------------


def test_every_rpc_has_a_row() -> None:
    missing = sorted(set(METHODS) - set(EXPECTED))
    stale = sorted(set(EXPECTED) - set(METHODS))
    assert not missing, f"RPCs without a row in EXPECTED: {missing}"
    assert not stale, f"rows for RPCs that no longer exist: {stale}"
    assert all(len(row) == len(COLUMNS) for row in EXPECTED.values())


def _cells() -> Iterator[Any]:
    for rpc in sorted(METHODS):
        for column in COLUMNS:
            marks = []
            if (rpc, column) in FINDINGS:
                marks.append(
                    pytest.mark.xfail(strict=True, reason=FINDINGS[(rpc, column)])
                )
            yield pytest.param(rpc, column, id=f"{rpc}-{column}", marks=marks)


@pytest.mark.parametrize(("rpc", "column"), list(_cells()))
def test_cell(world: World, rpc: str, column: str) -> None:
    assert rpc in EXPECTED, f"{rpc} has no row in EXPECTED"
    expected = EXPECTED[rpc][COLUMNS.index(column)]
    method = METHODS[rpc]
    role = acting_role(rpc, column)
    channel = world.channel_for(column, role)
    request = (
        other_org_request(world, rpc)
        if column == "other-org"
        else minimal_request(method)
    )
    kind = SetKind.ACCOUNT_CHECK if "AccountChecks" in rpc else SetKind.INSTRUCTION
    ready_before = world.ready_sets(kind) if expected == EMPTY else 0

    code, response = invoke(channel, method, request)

    if code is grpc.StatusCode.UNIMPLEMENTED:
        pytest.skip(f"this gateway build does not serve {rpc}")
    if expected == OK:
        assert code not in (PD, UA, UV), f"{role.value} refused with {code.name}"
    elif expected == EMPTY:
        assert ready_before > 0, "the owner bank should have sets ready"
        assert code is grpc.StatusCode.OK, code
        assert list(response.sets) == []
        assert world.ready_sets(kind) == ready_before
    else:
        assert code is expected, f"expected {expected.name}, got {code.name}"


class TestCrossTenant:
    """The same cross-tenant cases, with what must not have happened."""

    def test_another_county_reads_nothing_of_a_batch(self, world: World) -> None:
        running = world.running
        other = running.client(Role.DEPARTMENT, OTHER_ORG[Role.DEPARTMENT])
        same_county_other_department = running.client(Role.DEPARTMENT, "500154-MZJ")
        for credentials in (other, same_county_other_department):
            with open_channel(running.target, credentials) as channel:
                for rpc in (
                    "ykt.v1.DepartmentService/GetBatch",
                    "ykt.v1.DepartmentService/ListRecords",
                ):
                    code, response = invoke(
                        channel, METHODS[rpc], other_org_request(world, rpc)
                    )
                    assert code is NF
                    assert response is None

    def test_owner_reads_its_batch(self, world: World) -> None:
        owner = world.running.client(Role.DEPARTMENT, OWNER_DEPARTMENT)
        with open_channel(world.running.target, owner) as channel:
            code, response = invoke(
                channel,
                METHODS["ykt.v1.DepartmentService/GetBatch"],
                services_pb2.GetBatchRequest(batch_id="xa"),
            )
        assert code is grpc.StatusCode.OK
        assert response.record_count == 5

    def test_another_bank_cannot_move_the_owner_banks_sets(self, world: World) -> None:
        table = schema.exchange_sets
        with world.running.gateway.core.engine.connect() as connection:
            before = connection.execute(
                select(table.c.set_id, table.c.state, table.c.lease_id).order_by(
                    table.c.set_id
                )
            ).all()
        other = world.running.client(Role.BANK, OTHER_ORG[Role.BANK])
        with open_channel(world.running.target, other) as channel:
            for rpc in (
                "ykt.v1.BankService/PullAccountChecks",
                "ykt.v1.BankService/PullInstructions",
                "ykt.v1.BankService/Acknowledge",
                "ykt.v1.BankService/PostAccountCheckResults",
                "ykt.v1.BankService/PostResults",
            ):
                invoke(channel, METHODS[rpc], other_org_request(world, rpc))
        with world.running.gateway.core.engine.connect() as connection:
            after = connection.execute(
                select(table.c.set_id, table.c.state, table.c.lease_id).order_by(
                    table.c.set_id
                )
            ).all()
            results = connection.execute(
                select(func.count()).select_from(schema.results)
            ).scalar_one()
        assert after == before
        assert results == 0
