"""Validation before submission: the gateway's dry run and ``ykt validate``.

What these tests pin down:
  * A dry run (ValidateBatch) gives one verdict per record with the Chinese
    message, including the reasons that need the store (registry, earlier
    batches), and stores nothing at all: no batch, no record, no claim, no
    exchange set. A dry-run manifest is refused by SubmitBatch and a normal
    one by ValidateBatch, so neither can be replayed as the other.
  * ``ykt validate`` offline reads UTF-8 (with BOM) and GBK files, prints the
    records per primary reason, writes a verdict CSV with codes and Chinese
    messages and no name, ID number or account number, reports a 合计 row
    that disagrees with the rows as a file problem, and exits 1 when
    anything is refused, 0 when the file is clean.
  * ``ykt validate --gateway`` runs the same command as a dry run over mutual
    TLS, with the department's credentials folder.

Every person here is fictional and generated (``tests.fakes``).
"""

from __future__ import annotations

import csv
import random
import re
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select

from gateway import client
from gateway.cli import main
from gateway.client import ClientCredentials, build_submission, build_validation
from gateway.client import submit as submit_batch
from gateway.reasons import ID_STORED_AS_NUMBER_ZH, MESSAGES_ZH, ReasonCode
from gateway.store import schema
from gateway.validate import validate_online
from keys.identity import Role
from tests.conftest import Running
from tests.fakes import Person, make_card, make_id, make_name, people
from tests.test_submission import records_for, requests_for
from ykt.v1 import batch_pb2, services_pb2, services_pb2_grpc

DEPARTMENT = "500154-NYNC"
POLICY = "CQ-NY-001"
HEADER = ["序号", "姓名", "身份证号码", "银行账号", "发放金额（元）", "开户银行"]
TITLE = "开州区2026年耕地地力保护补贴发放清册"
# "CODE  count  message": the message is there for every refusal code.
COUNT_LINE = re.compile(r"^([A-Z_]+)\s+(\d+)(?:\s+(\S.*))?$")


@pytest.fixture
def department(running: Running) -> ClientCredentials:
    return running.client(Role.DEPARTMENT, DEPARTMENT)


@pytest.fixture
def newcomer() -> Person:
    """A fictional person the registry does not hold."""
    rng = random.Random(20260412)
    return Person(make_name(rng), make_id(rng), make_card(rng))


def wrong_check_digit(id_number: str) -> str:
    return id_number[:-1] + ("0" if id_number[-1] != "0" else "1")


def table_counts(running: Running) -> dict[str, int]:
    """Rows per table, for every table the gateway has."""
    with running.gateway.core.engine.connect() as connection:
        return {
            table.name: connection.execute(
                select(func.count()).select_from(table)
            ).scalar_one()
            for table in schema.metadata.sorted_tables
        }


def dry_run(
    running: Running,
    credentials: ClientCredentials,
    records: list[batch_pb2.PaymentRecord],
    batch_id: str = "dry-1",
) -> list[services_pb2.ValidateBatchResponse]:
    requests = build_validation(
        credentials.signer(),
        batch_id=batch_id,
        county="500154",
        department="NYNC",
        policy_code=POLICY,
        period="2026",
        records=records,
    )
    with running.channel(credentials) as channel:
        stub = services_pb2_grpc.DepartmentServiceStub(channel)
        return list(stub.ValidateBatch(iter(requests)))


def assert_no_personal_data(text: str, persons: Sequence[Person]) -> None:
    for person in persons:
        assert person.name not in text
        assert person.id_number[:14] not in text
        assert person.account[-10:] not in text


# -- the dry run over gRPC -----------------------------------------------------


def test_dry_run_gives_store_dependent_verdicts_and_stores_nothing(
    running: Running, department: ClientCredentials, newcomer: Person
) -> None:
    persons = running.persons
    with running.channel(department) as channel:
        submit_batch(channel, requests_for(department, records_for(persons[:3])))
    records = records_for(
        [persons[0], persons[5], newcomer, persons[6], persons[7], persons[8]]
    )
    records[3].id_number = wrong_check_digit(persons[6].id_number)
    records[4].amount = "0"
    records[5].amount = "20000.01"
    records.append(records_for([persons[5]])[0])
    records[6].row = 7
    before = table_counts(running)

    verdicts = dry_run(running, department, records)
    again = dry_run(running, department, records)

    expected = [
        [ReasonCode.DUPLICATE_PAID],
        [],
        [ReasonCode.ACCOUNT_NOT_REGISTERED],
        [ReasonCode.ID_INVALID],
        [ReasonCode.AMOUNT_INVALID],
        [ReasonCode.AMOUNT_OVER_LIMIT],
        [ReasonCode.DUPLICATE_IN_BATCH],
    ]
    assert [v.row for v in verdicts] == list(range(1, 8))
    assert [[r.code for r in v.reasons] for v in verdicts] == expected
    assert [v.accepted for v in verdicts] == [not codes for codes in expected]
    for verdict in verdicts:
        for reason in verdict.reasons:
            assert reason.message == MESSAGES_ZH[ReasonCode(reason.code)]
    assert_no_personal_data(str(verdicts), [*persons[:9], newcomer])
    assert again == verdicts
    assert table_counts(running) == before
    assert before["claims"] == 3


def test_a_dry_run_claims_nobody(
    running: Running, department: ClientCredentials
) -> None:
    persons = running.persons[10:13]
    records = records_for(persons)

    dry_run(running, department, records)
    with running.channel(department) as channel:
        response = submit_batch(channel, requests_for(department, records))

    assert response.record_count == 3
    assert response.rejected_count == 0


def test_a_person_named_twice_is_a_duplicate_in_the_batch_across_chunks(
    running: Running, department: ClientCredentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gateway finds a repeat through the batch's own claims, so it must
    # see the claims of earlier chunks as well as those of the chunk in hand,
    # and still tell them from another batch's claims.
    monkeypatch.setattr(client, "chunk_records", partial(client.chunk_records, size=2))
    first, second, paid = running.persons[20:23]
    with running.channel(department) as channel:
        submit_batch(channel, requests_for(department, records_for([paid]), "earlier"))
    records = records_for([first, first, second, paid, second, first])

    with running.channel(department) as channel:
        response = submit_batch(channel, requests_for(department, records, "chunked"))

    table = schema.records
    with running.gateway.core.engine.connect() as connection:
        chunks = connection.execute(
            select(func.count())
            .select_from(schema.batch_chunks)
            .where(schema.batch_chunks.c.batch_id == "chunked")
        ).scalar_one()
        reasons = (
            connection.execute(
                select(table.c.reasons)
                .where(table.c.batch_id == "chunked")
                .order_by(table.c.row)
            )
            .scalars()
            .all()
        )
    in_batch, paid_before = ReasonCode.DUPLICATE_IN_BATCH, ReasonCode.DUPLICATE_PAID
    assert chunks == 3
    assert reasons == ["", in_batch, "", paid_before, in_batch, in_batch]
    assert response.rejected_count == 4


def test_validate_online_yields_row_verdicts_with_file_rows(
    running: Running, department: ClientCredentials, newcomer: Person
) -> None:
    records = records_for([running.persons[0], newcomer])
    requests = build_validation(
        department.signer(),
        batch_id="dry-2",
        county="500154",
        department="NYNC",
        policy_code=POLICY,
        period="2026",
        records=records,
    )

    with running.channel(department) as channel:
        verdicts = list(validate_online(channel, requests, {1: 4, 2: 5}))

    assert [(v.row, v.file_row, v.accepted) for v in verdicts] == [
        (1, 4, True),
        (2, 5, False),
    ]
    assert verdicts[1].reasons == ("ACCOUNT_NOT_REGISTERED",)
    assert verdicts[1].messages() == [MESSAGES_ZH[ReasonCode.ACCOUNT_NOT_REGISTERED]]


def test_submit_batch_refuses_a_dry_run_manifest(
    running: Running, department: ClientCredentials
) -> None:
    requests = build_submission(
        department.signer(),
        batch_id="b-dry",
        county="500154",
        department="NYNC",
        policy_code=POLICY,
        period="2026",
        records=records_for(running.persons[:2]),
        dry_run=True,
    )
    before = table_counts(running)

    with running.channel(department) as channel, pytest.raises(grpc.RpcError) as error:
        submit_batch(channel, requests)

    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "dry-run" in (error.value.details() or "")
    assert table_counts(running) == before


def test_validate_batch_refuses_a_submission_manifest(
    running: Running, department: ClientCredentials
) -> None:
    submission = requests_for(department, records_for(running.persons[:2]))
    requests = [
        services_pb2.ValidateBatchRequest(manifest=submission[0].manifest),
        *(services_pb2.ValidateBatchRequest(chunk=r.chunk) for r in submission[1:]),
    ]

    with running.channel(department) as channel, pytest.raises(grpc.RpcError) as error:
        list(
            services_pb2_grpc.DepartmentServiceStub(channel).ValidateBatch(
                iter(requests)
            )
        )

    assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "dry-run" in (error.value.details() or "")


@pytest.mark.parametrize(
    ("role", "org", "status"),
    [
        pytest.param(
            Role.DEPARTMENT,
            "500110-NYNC",
            grpc.StatusCode.PERMISSION_DENIED,
            id="department-of-another-county",
        ),
        pytest.param(
            Role.BANK, "CQRCB", grpc.StatusCode.PERMISSION_DENIED, id="agent-bank"
        ),
    ],
)
def test_dry_run_for_another_organisation_is_refused(
    running: Running, role: Role, org: str, status: grpc.StatusCode
) -> None:
    caller = running.client(role, org)
    requests = build_validation(
        caller.signer(),
        batch_id="dry-3",
        county="500154",
        department="NYNC",
        policy_code=POLICY,
        period="2026",
        records=records_for(running.persons[:1]),
    )

    with running.channel(caller) as channel, pytest.raises(grpc.RpcError) as error:
        list(
            services_pb2_grpc.DepartmentServiceStub(channel).ValidateBatch(
                iter(requests)
            )
        )

    assert error.value.code() is status


# -- ykt validate ----------------------------------------------------------------


def write_list(
    path: Path,
    rows: Sequence[Sequence[str]],
    *,
    encoding: str,
    total: str | None = None,
) -> Path:
    """A department list: a title row, the header, the rows, maybe 合计."""
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([TITLE])
        writer.writerow(HEADER)
        for number, row in enumerate(rows, 1):
            writer.writerow([str(number), *row])
        if total is not None:
            writer.writerow(["合计", "", "", "", total, ""])
    return path


def row_of(person: Person, amount: str = "120.50") -> list[str]:
    return [person.name, person.id_number, person.account, amount, "重庆农村商业银行"]


def write_policies(path: Path, max_amount_yuan: str = "500.00") -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "policy_code",
                "policy_name",
                "department",
                "department_name",
                "period",
                "max_amount_yuan",
                "requires_list",
                "excludes_list",
            ]
        )
        policy = [POLICY, "耕地地力保护补贴", "NYNC", "农业农村委员会", "year"]
        writer.writerow([*policy, max_amount_yuan, "", ""])
    return path


def validate_args(source: Path, *extra: str) -> list[str]:
    """The arguments of ``ykt validate`` for a CQ-NY-001 list of 2026."""
    return ["validate", str(source), "--policy", POLICY, "--period", "2026", *extra]


def printed_counts(out: str) -> dict[str, int]:
    counts = {}
    for line in out.splitlines():
        match = COUNT_LINE.match(line)
        if match:
            code, count, message = match.groups()
            counts[code] = int(count)
            if code != "ACCEPTED":
                assert message == MESSAGES_ZH[ReasonCode(code)], code
    return counts


def read_verdicts(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def messages_for(codes: str) -> str:
    return "；".join(MESSAGES_ZH[ReasonCode(c)] for c in codes.split(";") if c)


@pytest.fixture
def offline_people() -> list[Person]:
    return people(6, seed=91)


@pytest.fixture
def problem_rows(offline_people: list[Person]) -> list[list[str]]:
    """One clean row and one row for each planted problem."""
    p = offline_people
    bad_id = row_of(p[1])
    bad_id[1] = wrong_check_digit(p[1].id_number)
    malformed_account = row_of(p[4])
    malformed_account[2] = "6214-59"
    return [
        row_of(p[0]),
        bad_id,
        row_of(p[2], "0.00"),
        row_of(p[3], "500.01"),
        row_of(p[0], "80.00"),
        malformed_account,
    ]


EXPECTED_OFFLINE = [
    ("1", "3", "yes", ""),
    ("2", "4", "no", "ID_INVALID"),
    ("3", "5", "no", "AMOUNT_INVALID"),
    ("4", "6", "no", "AMOUNT_OVER_LIMIT"),
    ("5", "7", "no", "DUPLICATE_IN_BATCH"),
    ("6", "8", "no", "ACCOUNT_INVALID"),
]


@pytest.mark.parametrize(
    "encoding",
    [pytest.param("utf-8-sig", id="utf8-with-bom"), pytest.param("gbk", id="gbk")],
)
def test_offline_validate_reports_each_planted_problem(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    offline_people: list[Person],
    problem_rows: list[list[str]],
    encoding: str,
) -> None:
    source = write_list(
        tmp_path / "清册.csv", problem_rows, encoding=encoding, total="9999.00"
    )
    policies = write_policies(tmp_path / "policies.csv")
    out = tmp_path / "verdicts.csv"

    status = main(validate_args(source, "--policies", str(policies), "--out", str(out)))
    printed = capsys.readouterr().out
    verdicts = read_verdicts(out)

    assert status == 1
    assert printed_counts(printed) == {
        "ACCEPTED": 1,
        "ID_INVALID": 1,
        "AMOUNT_INVALID": 1,
        "AMOUNT_OVER_LIMIT": 1,
        "DUPLICATE_IN_BATCH": 1,
        "ACCOUNT_INVALID": 1,
    }
    assert "records: 6" in printed
    file_lines = [line for line in printed.splitlines() if line.startswith("file:")]
    assert len(file_lines) == 1
    assert "合计" in file_lines[0]
    assert "9999.00" in file_lines[0]
    assert list(verdicts[0]) == ["row", "file_row", "accepted", "reasons", "messages"]
    assert [
        (v["row"], v["file_row"], v["accepted"], v["reasons"]) for v in verdicts
    ] == EXPECTED_OFFLINE
    assert [v["messages"] for v in verdicts] == [
        messages_for(v["reasons"]) for v in verdicts
    ]
    assert "身份证号码" in verdicts[1]["messages"]
    written = out.read_text(encoding="utf-8-sig")
    assert_no_personal_data(written + printed, offline_people)
    assert "6214-59" not in written + printed


def test_total_row_that_disagrees_is_a_file_problem_on_its_own(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    offline_people: list[Person],
) -> None:
    rows = [row_of(p, "100.00") for p in offline_people[:3]]
    source = write_list(tmp_path / "list.csv", rows, encoding="gbk", total="300.01")
    out = tmp_path / "verdicts.csv"

    status = main(validate_args(source, "--out", str(out)))
    printed = capsys.readouterr().out

    assert status == 1
    assert printed_counts(printed) == {"ACCEPTED": 3}
    assert any(
        line.startswith("file:") and "300.01" in line and "300.00" in line
        for line in printed.splitlines()
    )
    assert all(v["accepted"] == "yes" for v in read_verdicts(out))


@pytest.mark.parametrize(
    ("encoding", "total"),
    [
        pytest.param("utf-8-sig", "360.00", id="utf8-with-bom-matching-total"),
        pytest.param("gbk", "360.00", id="gbk-matching-total"),
        pytest.param("gbk", None, id="gbk-without-total-row"),
    ],
)
def test_clean_file_exits_zero(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    offline_people: list[Person],
    encoding: str,
    total: str | None,
) -> None:
    rows = [row_of(p) for p in offline_people[:3]]
    rows[0][3], rows[1][3], rows[2][3] = "100.00", "120.00", "140.00"
    source = write_list(tmp_path / "list.csv", rows, encoding=encoding, total=total)
    policies = write_policies(tmp_path / "policies.csv")
    out = tmp_path / "verdicts.csv"

    status = main(validate_args(source, "--policies", str(policies), "--out", str(out)))
    printed = capsys.readouterr().out

    assert status == 0
    assert printed_counts(printed) == {"ACCEPTED": 3}
    assert "file:" not in printed
    assert [v["reasons"] for v in read_verdicts(out)] == ["", "", ""]


def test_id_stored_as_a_number_gets_its_own_message_offline(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    offline_people: list[Person],
) -> None:
    rows = [row_of(offline_people[0])]
    rows[0][1] = "5.00154E+17"
    source = write_list(tmp_path / "list.csv", rows, encoding="gbk")
    out = tmp_path / "verdicts.csv"

    status = main(validate_args(source, "--out", str(out)))
    capsys.readouterr()

    assert status == 1
    assert read_verdicts(out)[0]["messages"] == ID_STORED_AS_NUMBER_ZH


# -- ykt validate --gateway ------------------------------------------------------


OnlineRun = Callable[[Path, Path], tuple[int, str]]


@pytest.fixture
def online_run(running: Running, capsys: pytest.CaptureFixture[str]) -> OnlineRun:
    """Runs ``ykt validate --gateway`` with a department's credentials."""
    credentials = running.client(Role.DEPARTMENT, DEPARTMENT)

    def run(source: Path, out: Path) -> tuple[int, str]:
        status = main(
            validate_args(
                source,
                *("--gateway", running.target),
                *("--credentials", str(credentials.directory)),
                *("--out", str(out)),
            )
        )
        return status, capsys.readouterr().out

    return run


def test_online_validate_shows_registry_reasons_and_stores_nothing(
    running: Running,
    tmp_path: Path,
    online_run: OnlineRun,
    newcomer: Person,
) -> None:
    persons = [*running.persons[:3], newcomer]
    source = write_list(
        tmp_path / "list.csv",
        [row_of(p) for p in persons],
        encoding="gbk",
        total="482.00",
    )
    out = tmp_path / "verdicts.csv"
    before = table_counts(running)

    status, printed = online_run(source, out)
    verdicts = read_verdicts(out)

    assert status == 1
    assert printed_counts(printed) == {"ACCEPTED": 3, "ACCOUNT_NOT_REGISTERED": 1}
    assert [(v["file_row"], v["reasons"]) for v in verdicts] == [
        ("3", ""),
        ("4", ""),
        ("5", ""),
        ("6", "ACCOUNT_NOT_REGISTERED"),
    ]
    assert verdicts[3]["messages"] == MESSAGES_ZH[ReasonCode.ACCOUNT_NOT_REGISTERED]
    assert "file:" not in printed
    assert_no_personal_data(out.read_text(encoding="utf-8-sig") + printed, persons)
    assert table_counts(running) == before


def test_online_validate_of_a_clean_file_exits_zero(
    running: Running, tmp_path: Path, online_run: OnlineRun
) -> None:
    source = write_list(
        tmp_path / "list.csv",
        [row_of(p) for p in running.persons[:3]],
        encoding="utf-8-sig",
        total="361.50",
    )

    status, printed = online_run(source, tmp_path / "v.csv")

    assert status == 0
    assert printed_counts(printed) == {"ACCEPTED": 3}


def test_online_validate_keeps_the_stored_as_number_message(
    running: Running, tmp_path: Path, online_run: OnlineRun
) -> None:
    rows = [row_of(running.persons[0])]
    rows[0][1] = "5.00154E+17"
    source = write_list(tmp_path / "list.csv", rows, encoding="gbk")
    out = tmp_path / "verdicts.csv"

    status, _ = online_run(source, out)

    assert status == 1
    assert read_verdicts(out)[0]["reasons"] == "ID_INVALID"
    assert read_verdicts(out)[0]["messages"] == ID_STORED_AS_NUMBER_ZH
