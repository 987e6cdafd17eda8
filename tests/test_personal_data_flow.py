"""Personal data in the store: who reads it in clear, the public notice, and
crypto-shredding at the end of retention, proven against an earlier copy
of the database.
"""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import grpc
import openpyxl
import pytest
from sqlalchemy import create_engine, select

from connectors.grpc_pull import GrpcPullRunner
from connectors.simulator import SimulatedBankCore, load_ledgers
from gateway import cli, personal_data, retention
from gateway.client import record_funds_release, submit
from gateway.core import Settings
from gateway.store import schema
from keys.identity import Identity, Role
from keys.keystore import KeyShreddedError, LocalKeyStore
from keys.trust import TrustStore
from tests.conftest import MovableClock, Running, start_gateway
from tests.test_submission import records_for, requests_for
from ykt.v1 import batch_pb2, services_pb2, services_pb2_grpc

UNMASKER = "500154-CZ"


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))


@pytest.fixture
def paid(tmp_path: Path, clock: MovableClock) -> Iterator[Running]:
    """A gateway with one batch of six, paid and closed."""
    running = start_gateway(tmp_path, None, clock)
    running.gateway.core.settings = Settings(unmask_orgs=frozenset({UNMASKER}))
    department = running.client(Role.DEPARTMENT, "500154-NYNC")
    with running.channel(department) as channel:
        submit(
            channel,
            requests_for(department, records_for(running.persons[:6]), now=clock.now),
        )
        record_funds_release(channel, "b-1", "GK-2026-0001")
    bank = running.client(Role.BANK, "CQRCB")
    core = SimulatedBankCore(
        "CQRCB", load_ledgers(running.reference / "banks"), tmp_path / "bank.db"
    )
    trust = TrustStore(running.ca.ca_path, [running.ca.crl_path], clock=clock)
    with running.channel(bank) as channel:
        runner = GrpcPullRunner(channel, core, bank.signer(), trust, clock=clock)
        for _ in range(10):
            if not runner.run_once():
                break
    yield running
    running.gateway.stop(0)


def _get(
    running: Running, role: Role, org: str, unmask: bool = False
) -> services_pb2.GetRecordResponse:
    with running.channel(running.client(role, org)) as channel:
        stub = services_pb2_grpc.AdminServiceStub(channel)
        return stub.GetRecord(
            services_pb2.GetRecordRequest(record_id="b-1.r1", unmask=unmask)
        )


def _actions(running: Running) -> list[str]:
    with running.gateway.core.engine.connect() as connection:
        return list(connection.execute(select(schema.audit_log.c.action)).scalars())


def test_a_department_sees_its_own_record_in_clear(paid: Running) -> None:
    person = paid.persons[0]
    record = _get(paid, Role.DEPARTMENT, "500154-NYNC")
    assert not record.masked
    assert (record.name, record.id_number, record.account_number) == (
        person.name,
        person.id_number,
        person.account,
    )
    assert record.outcome == batch_pb2.OUTCOME_PAID
    assert "record.read" in _actions(paid)


@pytest.mark.parametrize(
    ("role", "org"),
    [
        pytest.param(Role.FINANCE, "500154", id="finance"),
        pytest.param(Role.AUDITOR, "AUDIT-1", id="auditor"),
    ],
)
def test_finance_and_auditors_see_masked_data(
    paid: Running, role: Role, org: str
) -> None:
    person = paid.persons[0]
    record = _get(paid, role, org)
    assert record.masked
    assert record.id_number == person.id_number[:6] + "********" + person.id_number[-4:]
    assert record.account_number.startswith(person.account[:6])
    assert record.account_number.endswith(person.account[-4:])
    assert person.id_number not in str(record)
    assert person.account not in str(record)
    assert record.name != person.name
    assert record.name[0] == person.name[0]


def test_unmasking_needs_the_permission_and_is_audited(paid: Running) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        _get(paid, Role.FINANCE, "500154", unmask=True)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as refused:
        _get(paid, Role.AUDITOR, "AUDIT-1", unmask=True)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "record.unmasked" not in _actions(paid)

    record = _get(paid, Role.FINANCE, UNMASKER, unmask=True)
    assert not record.masked
    assert record.id_number == paid.persons[0].id_number
    assert "record.unmasked" in _actions(paid)


def test_another_departments_record_is_not_found(paid: Running) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        _get(paid, Role.DEPARTMENT, "500110-NYNC")
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("form", ["csv", "xlsx"])
def test_the_public_notice_lists_the_paid_masked(
    paid: Running, tmp_path: Path, form: str
) -> None:
    out = tmp_path / f"notice.{form}"
    people = personal_data.write_public_notice(
        paid.gateway.core,
        "b-1",
        out,
        contact="开州区农业农村委员会 023-0000000",
        department_org="500154-NYNC",
        xlsx=form == "xlsx",
    )
    assert people == 6
    if form == "csv":
        with out.open(encoding="utf-8-sig", newline="") as handle:
            cells = [cell for row in csv.reader(handle) for cell in row]
    else:
        sheet = openpyxl.load_workbook(out, read_only=True).active
        assert sheet is not None
        cells = [str(c) for row in sheet.iter_rows(values_only=True) for c in row]
    text = "\n".join(cells)
    for person in paid.persons[:6]:
        assert person.id_number not in text
        assert person.id_number[6:14] not in text  # the birth date is hidden
        assert person.name not in text
        assert person.account not in text
        assert person.id_number[:6] in text
    assert "023-0000000" in text
    assert "batch.disclosed" in _actions(paid)

    with pytest.raises(Exception, match="no such batch"):
        personal_data.write_public_notice(
            paid.gateway.core,
            "b-1",
            tmp_path / "other.csv",
            contact="x",
            department_org="500110-NYNC",
        )


def test_shredded_data_cannot_be_read_even_from_an_earlier_copy(
    paid: Running,
    clock: MovableClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    core = paid.gateway.core
    database = paid.config.database_url.removeprefix("sqlite:///")
    keys = LocalKeyStore(paid.config.keys_directory)

    # 1. A backup while the batch is wrapped under its open epoch.
    open_copy = _backup(database, tmp_path / "open-copy.db")

    # 2. The batch is closed: retention wraps it under its retention epoch.
    report = retention.run(core)
    assert report.rewrapped == 1
    assert report.destroyed_epochs == ()
    until_copy = _backup(database, tmp_path / "until-copy.db")
    assert (
        personal_data.get_record(
            core, Identity(Role.DEPARTMENT, "500154-NYNC"), "b-1.r1", unmask=False
        ).name
        == paid.persons[0].name
    )

    # 3. Past retention, and past the month it ends in: the keys go.
    clock.advance(dt.timedelta(days=core.settings.retention_days + 32))
    status = cli.main(
        ["retention", "run", "--state", str(paid.config.keys_directory.parent)]
    )
    printed = capsys.readouterr().out
    assert status == 0
    assert "batches shredded: 0" in printed  # the CLI's own clock is the real one
    report = retention.run(core)
    assert report.shredded_batches == 1
    assert {e.split("-")[0] for e in report.destroyed_epochs} == {"open", "until"}

    # 4. Neither backup can be opened with the keys that remain.
    for copy in (open_copy, until_copy):
        engine = create_engine(f"sqlite:///{copy}")
        with engine.connect() as connection:
            row = connection.execute(
                select(schema.batches.c.kek_id, schema.batches.c.wrapped_key)
            ).one()
        engine.dispose()
        with pytest.raises(KeyShreddedError):
            keys.unwrap(row.kek_id, row.wrapped_key, context=b"b-1")

    # 5. The record stays, as amounts, states and digests, with no person.
    record = personal_data.get_record(
        core, Identity(Role.DEPARTMENT, "500154-NYNC"), "b-1.r1", unmask=False
    )
    assert record.shredded
    assert (record.name, record.id_number, record.account_number) == ("", "", "")
    assert record.amount_fen == 12050
    assert record.outcome == batch_pb2.OUTCOME_PAID
    assert "retention.shredded" in _actions(paid)


def _backup(database: str, copy: Path) -> Path:
    """A consistent copy, as SQLite's online backup takes one."""
    source, target = sqlite3.connect(database), sqlite3.connect(copy)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return copy
