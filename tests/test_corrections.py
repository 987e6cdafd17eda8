"""Corrections (Art. 22): a later record that names the record it corrects.

What these tests pin down:
  * A record the gateway rejected, the bank failed or returned may be
    corrected by a record of a later batch of the same department, policy
    and period that carries ``corrects_record_id = "<batch>.r<row>"``.
  * Anything else is refused with CORRECTION_INVALID: a record that does not
    exist, one still pending, one paid, one of another department or
    period, a second correction of the same record in one batch, and a
    second correction while the first is accepted.
  * GetRecordLineage, asked about any record of a chain, returns the whole
    chain oldest first with every result the bank reported, and another
    county's department is told the record does not exist.

The bank is the simulator behind the real ``grpc-pull`` runner, over mutual
TLS. Every person here is fictional and generated (``tests.fakes``).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc
import pytest
from sqlalchemy import select

from connectors.grpc_pull import GrpcPullRunner
from connectors.simulator import SimulatedBankCore, load_ledgers
from gateway.client import (
    ClientCredentials,
    build_validation,
    record_funds_release,
    submit,
)
from gateway.store import schema
from keys.identity import Role
from keys.trust import TrustStore
from tests.conftest import Running
from tests.fakes import Person
from tests.test_submission import records_for, requests_for
from ykt.v1 import batch_pb2, exchange_pb2, services_pb2, services_pb2_grpc

DEPARTMENT = "500154-NYNC"
OTHER_COUNTY = "500110"
OTHER_DEPARTMENT = f"{OTHER_COUNTY}-NYNC"
POLICY = "CQ-NY-001"
CORRECTION_INVALID = "CORRECTION_INVALID"


# -- shared with test_verification_cache ---------------------------------------


def write_ledger(
    directory: Path,
    persons: Sequence[Person],
    statuses: Mapping[str, tuple[str, str]] | None = None,
) -> Path:
    """The simulated bank's ledger: every person's account, NORMAL unless
    ``statuses`` maps the account to (status, status_at_payment)."""
    statuses = statuses or {}
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "CQRCB.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        holder = ["account", "holder_name", "holder_id_number"]
        writer.writerow([*holder, "status", "status_at_payment"])
        for p in persons:
            status, at_payment = statuses.get(p.account, ("NORMAL", "NORMAL"))
            writer.writerow([p.account, p.name, p.id_number, status, at_payment])
    return directory


def run_bank(running: Running, tmp_path: Path, ledger: Path | None = None) -> None:
    """Let the agent bank pull, verify, pay and report until nothing moves."""
    bank = running.client(Role.BANK, "CQRCB")
    core = SimulatedBankCore(
        "CQRCB",
        load_ledgers(ledger or running.reference / "banks"),
        tmp_path / "bank" / "core.db",
        return_delay=dt.timedelta(0),
    )
    trust = TrustStore(
        running.ca.ca_path, [running.ca.crl_path], clock=lambda: dt.datetime.now(dt.UTC)
    )
    with running.channel(bank) as channel:
        runner = GrpcPullRunner(channel, core, bank.signer(), trust)
        for _ in range(10):
            if not runner.run_once():
                return
    raise AssertionError("the bank still had work after ten rounds")


def record_states(running: Running, batch_id: str) -> list[str]:
    """The gateway's internal state of each record of a batch, in row order."""
    records = schema.records
    with running.gateway.core.engine.connect() as connection:
        return list(
            connection.execute(
                select(records.c.state)
                .where(records.c.batch_id == batch_id)
                .order_by(records.c.row)
            ).scalars()
        )


# -- helpers -------------------------------------------------------------------


@pytest.fixture
def department(running: Running) -> ClientCredentials:
    return running.client(Role.DEPARTMENT, DEPARTMENT)


def record(
    person: Person, row: int = 1, amount: str = "120.50", corrects: str = ""
) -> batch_pb2.PaymentRecord:
    item = records_for([person], amount=amount)[0]
    item.row = row
    item.corrects_record_id = corrects
    return item


def send(
    running: Running,
    credentials: ClientCredentials,
    batch_id: str,
    records: list[batch_pb2.PaymentRecord],
    period: str = "2026",
    *,
    release: bool = False,
) -> list[list[str]]:
    """Submit a batch; return each record's reason codes, in row order."""
    county, _, department = credentials.signer().identity.org.partition("-")
    requests = requests_for(
        credentials,
        records,
        batch_id=batch_id,
        period=period,
        county=county,
        department=department,
    )
    with running.channel(credentials) as channel:
        submit(channel, requests)
        if release:
            record_funds_release(channel, batch_id, f"GK-{batch_id}")
        stub = services_pb2_grpc.DepartmentServiceStub(channel)
        listed = list(
            stub.ListRecords(services_pb2.ListRecordsRequest(batch_id=batch_id))
        )
    return [[reason.code for reason in item.reasons] for item in listed]


def lineage(
    running: Running, credentials: ClientCredentials, record_id: str
) -> services_pb2.GetRecordLineageResponse:
    with running.channel(credentials) as channel:
        stub = services_pb2_grpc.DepartmentServiceStub(channel)
        response: services_pb2.GetRecordLineageResponse = stub.GetRecordLineage(
            services_pb2.GetRecordLineageRequest(record_id=record_id)
        )
    return response


def open_other_county(running: Running) -> ClientCredentials:
    """Let county 500110 pay CQ-NY-001 through CQRCB; return its department."""
    finance = running.client(Role.FINANCE, OTHER_COUNTY)
    with running.channel(finance) as channel:
        services_pb2_grpc.AdminServiceStub(channel).SetAgentBank(
            services_pb2.SetAgentBankRequest(
                county=OTHER_COUNTY,
                policy_code=POLICY,
                bank_code="CQRCB",
                connector="grpc-pull",
            )
        )
    return running.client(Role.DEPARTMENT, OTHER_DEPARTMENT)


# -- accepted corrections ------------------------------------------------------


def test_record_rejected_by_the_rules_is_corrected_by_a_later_batch(
    running: Running, department: ClientCredentials
) -> None:
    person = running.persons[0]
    first = send(running, department, "b-1", [record(person, amount="0")])

    second = send(running, department, "b-2", [record(person, corrects="b-1.r1")])

    assert first == [["AMOUNT_INVALID"]]
    assert second == [[]]
    assert record_states(running, "b-2") == ["CHECKING"]
    with running.gateway.core.engine.connect() as connection:
        stored = connection.execute(
            select(schema.records.c.corrects_record_id).where(
                schema.records.c.record_id == "b-2.r1"
            )
        ).scalar_one()
    assert stored == "b-1.r1"


def test_a_refused_correction_does_not_block_a_later_one(
    running: Running, department: ClientCredentials
) -> None:
    person = running.persons[0]
    send(running, department, "b-1", [record(person, amount="0")])

    refused_again = send(
        running, department, "b-2", [record(person, amount="-5", corrects="b-1.r1")]
    )
    accepted = send(running, department, "b-3", [record(person, corrects="b-1.r1")])

    assert refused_again == [["AMOUNT_INVALID"]]
    assert accepted == [[]]


def test_a_correction_refused_for_its_target_reserves_nothing_in_its_batch(
    running: Running, department: ClientCredentials
) -> None:
    person = running.persons[0]
    send(running, department, "b-1", [record(person, amount="0")])

    verdicts = send(
        running,
        department,
        "b-2",
        [
            record(person, row=1, corrects="b-1.r99"),
            record(person, row=2, corrects="b-1.r1"),
        ],
    )

    assert verdicts == [[CORRECTION_INVALID], []]


@pytest.mark.parametrize(
    ("status", "at_payment", "state"),
    [
        pytest.param("NORMAL", "FROZEN", "FAILED", id="failed-at-payment"),
        pytest.param(
            "NORMAL", "RETURN_AFTER_PAYMENT", "RETURNED", id="returned-after-payment"
        ),
        pytest.param("FROZEN", "FROZEN", "REJECTED", id="refused-by-account-check"),
    ],
)
def test_record_the_bank_did_not_pay_may_be_corrected(
    running: Running,
    department: ClientCredentials,
    tmp_path: Path,
    status: str,
    at_payment: str,
    state: str,
) -> None:
    person = running.persons[0]
    ledger = write_ledger(
        tmp_path / "ledger", running.persons, {person.account: (status, at_payment)}
    )
    send(running, department, "b-1", [record(person)], release=True)
    run_bank(running, tmp_path, ledger)

    corrected = send(running, department, "b-2", [record(person, corrects="b-1.r1")])

    assert record_states(running, "b-1") == [state]
    assert corrected == [[]]


# -- refused corrections -------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param("b-1.r99", [CORRECTION_INVALID], id="record-does-not-exist"),
        pytest.param("b-9.r1", [CORRECTION_INVALID], id="batch-does-not-exist"),
        pytest.param("garbage", [CORRECTION_INVALID], id="malformed-record-id"),
        pytest.param(
            "b-1.r2",
            ["DUPLICATE_PAID", CORRECTION_INVALID],
            id="record-still-pending-CHECKING",
        ),
    ],
)
def test_correction_of_a_record_it_may_not_correct_is_refused(
    running: Running,
    department: ClientCredentials,
    target: str,
    expected: list[str],
) -> None:
    rejected, pending = running.persons[0], running.persons[1]
    send(
        running,
        department,
        "b-1",
        [record(rejected, row=1, amount="0"), record(pending, row=2)],
    )
    person = pending if target == "b-1.r2" else rejected

    verdicts = send(running, department, "b-2", [record(person, corrects=target)])

    assert record_states(running, "b-1") == ["REJECTED", "CHECKING"]
    assert verdicts == [expected]
    assert record_states(running, "b-2") == ["REJECTED"]


def test_correction_of_a_paid_record_is_refused(
    running: Running, department: ClientCredentials, tmp_path: Path
) -> None:
    person = running.persons[0]
    send(running, department, "b-1", [record(person)], release=True)
    run_bank(running, tmp_path)

    verdicts = send(running, department, "b-2", [record(person, corrects="b-1.r1")])

    assert record_states(running, "b-1") == ["PAID"]
    assert verdicts == [["DUPLICATE_PAID", CORRECTION_INVALID]]


def test_correction_of_another_departments_record_is_refused(
    running: Running, department: ClientCredentials
) -> None:
    person = running.persons[0]
    other = open_other_county(running)
    theirs = send(running, other, "x-1", [record(person, amount="0")])

    verdicts = send(running, department, "b-2", [record(person, corrects="x-1.r1")])

    assert theirs == [["AMOUNT_INVALID"]]
    assert verdicts == [[CORRECTION_INVALID]]


def test_correction_of_a_record_of_another_period_is_refused(
    running: Running, department: ClientCredentials
) -> None:
    person = running.persons[0]
    send(running, department, "b-1", [record(person, amount="0")], period="2025")

    verdicts = send(running, department, "b-2", [record(person, corrects="b-1.r1")])

    assert verdicts == [[CORRECTION_INVALID]]


def test_second_correction_of_one_record_in_the_same_batch_is_refused(
    running: Running, department: ClientCredentials
) -> None:
    person, other = running.persons[0], running.persons[4]
    send(running, department, "b-1", [record(person, amount="0")])

    verdicts = send(
        running,
        department,
        "b-2",
        [
            record(person, row=1, corrects="b-1.r1"),
            record(other, row=2, corrects="b-1.r1"),
        ],
    )

    assert verdicts == [[], [CORRECTION_INVALID]]
    assert record_states(running, "b-2") == ["CHECKING", "REJECTED"]


def test_second_correction_while_the_first_is_accepted_is_refused(
    running: Running, department: ClientCredentials
) -> None:
    person, other = running.persons[0], running.persons[4]
    send(running, department, "b-1", [record(person, amount="0")])
    send(running, department, "b-2", [record(person, corrects="b-1.r1")])

    # Another amount: the same content again would be the same batch, b-2.
    same_person = send(
        running, department, "b-3", [record(person, amount="99.00", corrects="b-1.r1")]
    )
    other_person = send(running, department, "b-4", [record(other, corrects="b-1.r1")])

    assert same_person == [["DUPLICATE_PAID", CORRECTION_INVALID]]
    assert other_person == [[CORRECTION_INVALID]]


def test_dry_run_applies_the_same_correction_rules(
    running: Running, department: ClientCredentials
) -> None:
    person = running.persons[0]
    send(running, department, "b-1", [record(person, amount="0")])
    requests = build_validation(
        department.signer(),
        batch_id="dry-1",
        county="500154",
        department="NYNC",
        policy_code=POLICY,
        period="2026",
        records=[
            record(person, row=1, corrects="b-1.r1"),
            record(running.persons[4], row=2, corrects="b-1.r1"),
            record(running.persons[5], row=3, corrects="b-1.r7"),
        ],
    )

    with running.channel(department) as channel:
        stub = services_pb2_grpc.DepartmentServiceStub(channel)
        verdicts = list(stub.ValidateBatch(iter(requests)))

    assert [[r.code for r in v.reasons] for v in verdicts] == [
        [],
        [CORRECTION_INVALID],
        [CORRECTION_INVALID],
    ]


# -- lineage -------------------------------------------------------------------


@pytest.fixture
def chain(running: Running, department: ClientCredentials, tmp_path: Path) -> list[str]:
    """b-1.r1 (zero amount) <- b-2.r1 (over the limit) <- b-3.r1, paid."""
    person = running.persons[0]
    send(running, department, "b-1", [record(person, amount="0")])
    send(
        running,
        department,
        "b-2",
        [record(person, amount="20000.01", corrects="b-1.r1")],
    )
    send(
        running,
        department,
        "b-3",
        [record(person, corrects="b-2.r1")],
        release=True,
    )
    run_bank(running, tmp_path)
    return ["b-1.r1", "b-2.r1", "b-3.r1"]


@pytest.mark.parametrize(
    "asked",
    [
        pytest.param(0, id="asked-about-the-original"),
        pytest.param(1, id="asked-about-the-middle"),
        pytest.param(2, id="asked-about-the-latest"),
    ],
)
def test_lineage_from_any_record_is_the_whole_chain_oldest_first(
    running: Running, department: ClientCredentials, chain: list[str], asked: int
) -> None:
    response = lineage(running, department, chain[asked])

    entries = response.entries
    assert [e.record_id for e in entries] == chain
    assert [e.batch_id for e in entries] == ["b-1", "b-2", "b-3"]
    assert [e.corrects_record_id for e in entries] == ["", "b-1.r1", "b-2.r1"]
    assert [e.outcome for e in entries] == [
        batch_pb2.OUTCOME_REJECTED,
        batch_pb2.OUTCOME_REJECTED,
        batch_pb2.OUTCOME_PAID,
    ]
    assert [[r.code for r in e.reasons] for e in entries] == [
        ["AMOUNT_INVALID"],
        ["AMOUNT_OVER_LIMIT"],
        [],
    ]
    assert entries[1].reasons[0].message.startswith("发放金额超过")
    assert [e.amount_fen for e in entries] == [0, 2000001, 12050]
    assert [len(e.results) for e in entries] == [0, 0, 1]
    paid = entries[2].results[0]
    assert paid.status == exchange_pb2.RESULT_STATUS_PAID
    assert paid.bank_reference.startswith("CQRCB")
    assert paid.completed_at.seconds > 0


def test_lineage_shows_a_return_after_the_payment(
    running: Running, department: ClientCredentials, tmp_path: Path
) -> None:
    person = running.persons[0]
    ledger = write_ledger(
        tmp_path / "ledger",
        running.persons,
        {person.account: ("NORMAL", "RETURN_AFTER_PAYMENT")},
    )
    send(running, department, "b-1", [record(person)], release=True)
    run_bank(running, tmp_path, ledger)
    send(running, department, "b-2", [record(person, corrects="b-1.r1")])

    entries = lineage(running, department, "b-2.r1").entries

    assert [e.record_id for e in entries] == ["b-1.r1", "b-2.r1"]
    assert entries[0].outcome == batch_pb2.OUTCOME_RETURNED
    assert [r.status for r in entries[0].results] == [
        exchange_pb2.RESULT_STATUS_PAID,
        exchange_pb2.RESULT_STATUS_RETURNED,
    ]
    assert entries[0].results[1].reason_code == "ACCOUNT_CLOSED"
    assert entries[1].outcome == batch_pb2.OUTCOME_PENDING


def test_lineage_is_readable_by_finance_of_any_county_and_auditors(
    running: Running, department: ClientCredentials
) -> None:
    person = running.persons[0]
    send(running, department, "b-1", [record(person, amount="0")])
    send(running, department, "b-2", [record(person, corrects="b-1.r1")])

    for reader in (
        running.client(Role.FINANCE, "500154"),
        running.client(Role.AUDITOR, "500154-SJJ"),
    ):
        entries = lineage(running, reader, "b-1.r1").entries
        assert [e.record_id for e in entries] == ["b-1.r1", "b-2.r1"]


@pytest.mark.parametrize(
    ("role", "org", "record_id", "status"),
    [
        pytest.param(
            Role.DEPARTMENT,
            OTHER_DEPARTMENT,
            "b-1.r1",
            grpc.StatusCode.NOT_FOUND,
            id="department-of-another-county",
        ),
        pytest.param(
            Role.DEPARTMENT,
            DEPARTMENT,
            "b-1.r9",
            grpc.StatusCode.NOT_FOUND,
            id="unknown-record",
        ),
        pytest.param(
            Role.BANK,
            "CQRCB",
            "b-1.r1",
            grpc.StatusCode.PERMISSION_DENIED,
            id="agent-bank",
        ),
        pytest.param(
            Role.UNIT,
            "500154-HANFENG",
            "b-1.r1",
            grpc.StatusCode.PERMISSION_DENIED,
            id="implementing-unit",
        ),
    ],
)
def test_lineage_is_refused_to_those_who_may_not_see_it(
    running: Running,
    department: ClientCredentials,
    role: Role,
    org: str,
    record_id: str,
    status: grpc.StatusCode,
) -> None:
    send(running, department, "b-1", [record(running.persons[0], amount="0")])
    caller = running.client(role, org)

    with pytest.raises(grpc.RpcError) as error:
        lineage(running, caller, record_id)

    assert error.value.code() is status


def test_lineage_of_a_branched_chain_is_oldest_first(
    running: Running, department: ClientCredentials
) -> None:
    person = running.persons[0]
    send(running, department, "b-1", [record(person, amount="0")])
    send(running, department, "b-2", [record(person, amount="-1", corrects="b-1.r1")])
    send(running, department, "b-3", [record(person, amount="-2", corrects="b-2.r1")])
    send(running, department, "b-4", [record(person, corrects="b-1.r1")])

    entries = lineage(running, department, "b-4.r1").entries

    assert [e.batch_id for e in entries] == ["b-1", "b-2", "b-3", "b-4"]
