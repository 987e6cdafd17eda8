"""The verification cache: a bank's recent confirmation of an account is reused.

What these tests pin down:
  * After the agent bank confirmed an account for a holder, a later batch
    paying the same holder into the same account skips the account check:
    no account-check set is written for it, its records go straight to
    INSTRUCTED, and the instruction set stays HELD (never handed to the
    bank) until the batch's funds are released (Art. 19).
  * A confirmation is reused only until it expires
    (``Settings.verification_ttl_hours``); after that the account is checked
    again.
  * A refusal is never reused: an account the bank refused (FROZEN) is
    checked again in the next batch, since the beneficiary may have put it
    right meanwhile.

Batch 1 is CQ-NY-001 for 2026; the later batches pay the same people for
earlier years, so the duplicate rule does not stop them. The bank is the
simulator behind the real ``grpc-pull`` runner, over mutual TLS. Every
person here is fictional and generated (``tests.fakes``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import ColumnElement, Table, func, select, update

from gateway.client import (
    ClientCredentials,
    record_funds_release,
    submit,
)
from gateway.core import Settings
from gateway.states import SetKind
from gateway.store import schema
from keys.identity import Role
from tests.conftest import Running
from tests.fakes import Person
from tests.test_corrections import record_states, run_bank, write_ledger
from tests.test_submission import records_for, requests_for
from ykt.v1 import batch_pb2, services_pb2, services_pb2_grpc

DEPARTMENT = "500154-NYNC"
TTL = dt.timedelta(hours=Settings().verification_ttl_hours)


@pytest.fixture
def department(running: Running) -> ClientCredentials:
    return running.client(Role.DEPARTMENT, DEPARTMENT)


def send(
    running: Running,
    department: ClientCredentials,
    batch_id: str,
    persons: list[Person],
    period: str,
    *,
    release: bool = False,
    now: dt.datetime | None = None,
) -> None:
    requests = requests_for(
        department, records_for(persons), batch_id=batch_id, period=period, now=now
    )
    with running.channel(department) as channel:
        submit(channel, requests)
        if release:
            record_funds_release(channel, batch_id, f"GK-{batch_id}")


def release(running: Running, department: ClientCredentials, batch_id: str) -> None:
    with running.channel(department) as channel:
        record_funds_release(channel, batch_id, f"GK-{batch_id}")


def sets_of(running: Running, batch_id: str, kind: SetKind) -> list[str]:
    """The states of a batch's exchange sets of one kind."""
    table = schema.exchange_sets
    with running.gateway.core.engine.connect() as connection:
        return list(
            connection.execute(
                select(table.c.state)
                .where(table.c.batch_id == batch_id, table.c.kind == kind.value)
                .order_by(table.c.set_id)
            ).scalars()
        )


def count(running: Running, table: Table, *where: ColumnElement[bool]) -> int:
    query = select(func.count()).select_from(table).where(*where)
    with running.gateway.core.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def answered_check_sets(running: Running) -> int:
    """How many signed account-check answers the bank has sent."""
    evidence = schema.evidence
    return count(running, evidence, evidence.c.kind == SetKind.ACCOUNT_CHECK.value)


def outcomes(
    running: Running, department: ClientCredentials, batch_id: str
) -> list[batch_pb2.Outcome.ValueType]:
    with running.channel(department) as channel:
        stub = services_pb2_grpc.DepartmentServiceStub(channel)
        listed = stub.ListRecords(services_pb2.ListRecordsRequest(batch_id=batch_id))
        return [item.outcome for item in listed]


@pytest.fixture
def paid_once(
    running: Running, department: ClientCredentials, tmp_path: Path
) -> list[Person]:
    """Batch b-1 (2026) paid: the bank confirmed four accounts."""
    persons = running.persons[:4]
    send(running, department, "b-1", persons, "2026", release=True)
    run_bank(running, tmp_path)
    assert record_states(running, "b-1") == ["PAID"] * 4
    return persons


# -- reuse -----------------------------------------------------------------------


def test_recently_confirmed_accounts_skip_the_check_and_wait_for_funds(
    running: Running,
    department: ClientCredentials,
    tmp_path: Path,
    paid_once: list[Person],
) -> None:
    answers = answered_check_sets(running)
    remembered = count(running, schema.account_verifications)

    send(running, department, "b-2", paid_once, "2025")
    routed = record_states(running, "b-2")
    held = sets_of(running, "b-2", SetKind.INSTRUCTION)
    run_bank(running, tmp_path)
    after_bank_without_funds = record_states(running, "b-2")
    still_held = sets_of(running, "b-2", SetKind.INSTRUCTION)
    release(running, department, "b-2")
    ready = sets_of(running, "b-2", SetKind.INSTRUCTION)
    run_bank(running, tmp_path)

    assert remembered == 4
    assert sets_of(running, "b-2", SetKind.ACCOUNT_CHECK) == []
    assert routed == ["INSTRUCTED"] * 4
    assert held == ["HELD"]
    assert after_bank_without_funds == ["INSTRUCTED"] * 4
    assert still_held == ["HELD"]
    assert ready == ["READY"]
    assert record_states(running, "b-2") == ["PAID"] * 4
    assert outcomes(running, department, "b-2") == [batch_pb2.OUTCOME_PAID] * 4
    assert answered_check_sets(running) == answers


def test_department_sees_instructed_records_as_pending(
    running: Running, department: ClientCredentials, paid_once: list[Person]
) -> None:
    send(running, department, "b-2", paid_once, "2025")

    assert outcomes(running, department, "b-2") == [batch_pb2.OUTCOME_PENDING] * 4


def test_only_the_confirmed_people_skip_the_check(
    running: Running, department: ClientCredentials, paid_once: list[Person]
) -> None:
    newcomers = running.persons[10:12]

    send(running, department, "b-2", [*paid_once[:2], *newcomers], "2025")

    assert record_states(running, "b-2") == [
        "INSTRUCTED",
        "INSTRUCTED",
        "CHECKING",
        "CHECKING",
    ]
    assert sets_of(running, "b-2", SetKind.ACCOUNT_CHECK) == ["READY"]
    assert sets_of(running, "b-2", SetKind.INSTRUCTION) == ["HELD"]


# -- expiry ----------------------------------------------------------------------


def test_expired_confirmation_is_checked_again(
    running: Running,
    department: ClientCredentials,
    tmp_path: Path,
    paid_once: list[Person],
) -> None:
    table = schema.account_verifications
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    with running.gateway.core.engine.begin() as connection:
        connection.execute(update(table).values(expires_at=past))

    send(running, department, "b-2", paid_once, "2025", release=True)
    routed = record_states(running, "b-2")
    checks = sets_of(running, "b-2", SetKind.ACCOUNT_CHECK)
    run_bank(running, tmp_path)

    assert routed == ["CHECKING"] * 4
    assert checks == ["READY"]
    assert sets_of(running, "b-2", SetKind.INSTRUCTION) == ["DONE"]
    assert record_states(running, "b-2") == ["PAID"] * 4
    with running.gateway.core.engine.connect() as connection:
        renewed = connection.execute(select(table.c.expires_at)).scalars().all()
    assert len(renewed) == 4
    assert all(expires > dt.datetime.now(dt.UTC) for expires in renewed)


@pytest.mark.parametrize(
    ("later", "expected"),
    [
        pytest.param(TTL - dt.timedelta(hours=1), "INSTRUCTED", id="an-hour-before"),
        pytest.param(TTL + dt.timedelta(hours=1), "CHECKING", id="an-hour-after"),
    ],
)
def test_gateway_clock_past_the_time_to_live_checks_again(
    running: Running,
    department: ClientCredentials,
    paid_once: list[Person],
    later: dt.timedelta,
    expected: str,
) -> None:
    then = dt.datetime.now(dt.UTC) + later
    core = running.gateway.core
    real_clock = core.clock
    core.clock = lambda: dt.datetime.now(dt.UTC) + later
    try:
        send(running, department, "b-2", paid_once, "2025", now=then)
    finally:
        core.clock = real_clock

    assert record_states(running, "b-2") == [expected] * 4
    has_checks = sets_of(running, "b-2", SetKind.ACCOUNT_CHECK) != []
    assert has_checks is (expected == "CHECKING")


# -- refusals are not remembered -------------------------------------------------


def test_refused_account_is_checked_again_in_the_next_batch(
    running: Running, department: ClientCredentials, tmp_path: Path
) -> None:
    persons = running.persons[:3]
    frozen = persons[0]
    ledger = write_ledger(
        tmp_path / "frozen", running.persons, {frozen.account: ("FROZEN", "FROZEN")}
    )
    send(running, department, "b-1", persons, "2026", release=True)
    run_bank(running, tmp_path, ledger)
    first = record_states(running, "b-1")
    remembered = count(running, schema.account_verifications)

    send(running, department, "b-2", persons, "2025", release=True)
    routed = record_states(running, "b-2")
    unfrozen = write_ledger(tmp_path / "unfrozen", running.persons)
    run_bank(running, tmp_path, unfrozen)

    assert first == ["REJECTED", "PAID", "PAID"]
    assert remembered == 2
    assert routed == ["CHECKING", "INSTRUCTED", "INSTRUCTED"]
    assert sets_of(running, "b-2", SetKind.ACCOUNT_CHECK) == ["DONE"]
    assert record_states(running, "b-2") == ["PAID", "PAID", "PAID"]
    assert count(running, schema.account_verifications) == 3


def test_refused_account_is_refused_again_while_still_frozen(
    running: Running, department: ClientCredentials, tmp_path: Path
) -> None:
    frozen = running.persons[0]
    ledger = write_ledger(
        tmp_path / "frozen", running.persons, {frozen.account: ("FROZEN", "FROZEN")}
    )
    send(running, department, "b-1", [frozen], "2026", release=True)
    run_bank(running, tmp_path, ledger)

    send(running, department, "b-2", [frozen], "2025", release=True)
    routed = record_states(running, "b-2")
    run_bank(running, tmp_path, ledger)

    assert routed == ["CHECKING"]
    assert record_states(running, "b-2") == ["REJECTED"]
    assert count(running, schema.account_verifications) == 0
    with running.gateway.core.engine.connect() as connection:
        reasons = connection.execute(
            select(schema.records.c.reasons).where(
                schema.records.c.record_id == "b-2.r1"
            )
        ).scalar_one()
    assert reasons == "ACCOUNT_FROZEN"


def test_a_different_name_for_the_same_holder_is_checked_again(
    running: Running, department: ClientCredentials, paid_once: list[Person]
) -> None:
    person = paid_once[0]
    renamed = Person("钱多多", person.id_number, person.account)
    assert renamed.name != person.name

    send(running, department, "b-2", [renamed], "2025")

    assert record_states(running, "b-2") == ["CHECKING"]
