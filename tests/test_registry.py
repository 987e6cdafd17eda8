"""The one-card account registry over real mutual TLS: declare, review, confirm.

What these tests pin down (Art. 10-14):
  * Only a confirmed declaration changes the registry: a batch record with the
    declared account is ACCOUNT_NOT_REGISTERED before confirmation and
    accepted after it; a refusal at review leaves the registry as it was.
  * Each step is recorded with actor, role and time, and the database refuses
    UPDATE and DELETE of recorded steps.
  * Refusals carry the status the architecture table fixes and a message
    that names the field, never the person's name, ID number or account.
  * Units declare and review only their own declarations, finance confirms
    only in its own county, banks, departments and auditors declare nothing.

Every person here is fictional and generated (``tests.fakes``).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import pytest
import sqlalchemy.exc
from sqlalchemy import delete, func, insert, select, update

from gateway.client import ClientCredentials, submit
from gateway.store import schema
from keys.identity import Role
from tests.conftest import Running
from tests.fakes import Person, make_card, make_id, make_name
from tests.test_submission import records_for, requests_for
from ykt.v1 import (
    registry_pb2,
    services_pb2,
    services_pb2_grpc,
)

UNIT = "500154-HANFENG"
OTHER_UNIT = "500154-ZHAOJIA"
FINANCE = "500154"
OTHER_FINANCE = "500110"
DEPARTMENT = "500154-NYNC"
OTHER_BANK = "ABC"
OTHER_BANK_PREFIX = "622848"
STATE = registry_pb2


@dataclass
class Parties:
    """The credentials each role in these tests calls with."""

    unit: ClientCredentials
    finance: ClientCredentials
    department: ClientCredentials


@pytest.fixture
def parties(running: Running) -> Parties:
    return Parties(
        unit=running.client(Role.UNIT, UNIT),
        finance=running.client(Role.FINANCE, FINANCE),
        department=running.client(Role.DEPARTMENT, DEPARTMENT),
    )


@pytest.fixture
def newcomer() -> Person:
    """A fictional person the registry does not hold yet."""
    rng = random.Random(20260411)
    return Person(make_name(rng), make_id(rng), make_card(rng))


@pytest.fixture(autouse=True)
def second_bank(running: Running) -> None:
    """A second bank in the reference data, whose cards carry another prefix."""
    with running.gateway.core.engine.begin() as connection:
        connection.execute(
            insert(schema.banks).values(
                bank_code=OTHER_BANK,
                bank_name="中国农业银行",
                card_prefix=OTHER_BANK_PREFIX,
            )
        )


def declaration_for(
    person: Person, **overrides: str
) -> registry_pb2.AccountDeclaration:
    values = {
        "id_number": person.id_number,
        "name": person.name,
        "bank_code": "CQRCB",
        "account_number": person.account,
        "account_kind": "社保卡",
        "application_reference": "SQB-2026-0417",
    }
    values.update(overrides)
    return registry_pb2.AccountDeclaration(**values)


def _stub(channel: grpc.Channel) -> services_pb2_grpc.RegistryServiceStub:
    return services_pb2_grpc.RegistryServiceStub(channel)


def declare(
    running: Running,
    credentials: ClientCredentials,
    declaration: registry_pb2.AccountDeclaration,
) -> registry_pb2.DeclarationSummary:
    request = services_pb2.DeclareAccountRequest(declaration=declaration)
    with running.channel(credentials) as channel:
        return _stub(channel).DeclareAccount(request).declaration


def review(
    running: Running,
    credentials: ClientCredentials,
    declaration_id: str,
    approve: bool = True,
    note: str = "",
) -> registry_pb2.DeclarationSummary:
    request = services_pb2.ReviewDeclarationRequest(
        declaration_id=declaration_id, approve=approve, note=note
    )
    with running.channel(credentials) as channel:
        return _stub(channel).ReviewDeclaration(request).declaration


def confirm(
    running: Running,
    credentials: ClientCredentials,
    declaration_id: str,
    approve: bool = True,
    note: str = "",
) -> registry_pb2.DeclarationSummary:
    request = services_pb2.ConfirmDeclarationRequest(
        declaration_id=declaration_id, approve=approve, note=note
    )
    with running.channel(credentials) as channel:
        return _stub(channel).ConfirmDeclaration(request).declaration


def get_declaration(
    running: Running, credentials: ClientCredentials, declaration_id: str
) -> registry_pb2.DeclarationSummary:
    request = services_pb2.GetDeclarationRequest(declaration_id=declaration_id)
    with running.channel(credentials) as channel:
        return _stub(channel).GetDeclaration(request).declaration


def registry_count(running: Running) -> int:
    with running.gateway.core.engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(schema.registry_accounts)
        ).scalar_one()


def registered_account(running: Running, person: Person) -> bytes | None:
    """The account digest the registry holds for a person, if any."""
    core = running.gateway.core
    table = schema.registry_accounts
    with core.engine.connect() as connection:
        row = connection.execute(
            select(table.c.account_digest).where(
                table.c.person_digest == core.tokenizer.person(person.id_number)
            )
        ).one_or_none()
    return None if row is None else bytes(row.account_digest)


def outcome_codes(
    running: Running,
    department: ClientCredentials,
    batch_id: str,
    persons: list[Person],
    amount: str,
) -> list[list[str]]:
    """Submit one batch and return each record's reason codes, in row order."""
    with running.channel(department) as channel:
        submit(
            channel,
            requests_for(
                department,
                records_for(persons, amount=amount),
                batch_id=batch_id,
            ),
        )
        stub = services_pb2_grpc.DepartmentServiceStub(channel)
        listed = list(
            stub.ListRecords(services_pb2.ListRecordsRequest(batch_id=batch_id))
        )
    return [[reason.code for reason in record.reasons] for record in listed]


def assert_no_personal_data(text: str, *persons: Person) -> None:
    for person in persons:
        for value in (person.name, person.id_number, person.account):
            assert value not in text
        assert person.id_number[:14] not in text
        assert person.account[-8:] not in text


def refused(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        call()  # type: ignore[operator]
    return error.value


# -- the whole path ------------------------------------------------------------


def test_confirmed_declaration_registers_the_account_and_records_each_step(
    running: Running,
    parties: Parties,
    newcomer: Person,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    before = outcome_codes(running, parties.department, "b-before", [newcomer], "80.00")
    count_before = registry_count(running)

    declared = declare(running, parties.unit, declaration_for(newcomer))
    reviewed = review(running, parties.unit, declared.declaration_id, note="核对无误")
    between = registry_count(running)
    confirmed = confirm(running, parties.finance, declared.declaration_id)
    shown = get_declaration(running, parties.unit, declared.declaration_id)
    after = outcome_codes(running, parties.department, "b-after", [newcomer], "90.00")
    finished = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)

    assert before == [["ACCOUNT_NOT_REGISTERED"]]
    assert after == [[]]
    assert declared.state == STATE.DECLARATION_STATE_DECLARED
    assert reviewed.state == STATE.DECLARATION_STATE_REVIEWED
    assert confirmed.state == STATE.DECLARATION_STATE_CONFIRMED
    assert between == count_before
    assert registry_count(running) == count_before + 1
    assert registered_account(running, newcomer) == (
        running.gateway.core.tokenizer.account(newcomer.account)
    )
    assert not declared.changes_registered_account
    assert shown.county == "500154"
    assert shown.bank_code == "CQRCB"
    assert [(s.state, s.actor, s.role) for s in shown.steps] == [
        (STATE.DECLARATION_STATE_DECLARED, UNIT, "unit"),
        (STATE.DECLARATION_STATE_REVIEWED, UNIT, "unit"),
        (STATE.DECLARATION_STATE_CONFIRMED, FINANCE, "finance"),
    ]
    assert shown.steps[1].note == "核对无误"
    times = [s.at.ToDatetime(tzinfo=dt.UTC) for s in shown.steps]
    assert times == sorted(times)
    assert all(started <= t <= finished for t in times)
    assert_no_personal_data(str(shown), newcomer)
    assert "batch stored" in caplog.messages
    logged = "\n".join(str(vars(record)) for record in caplog.records)
    assert_no_personal_data(logged, newcomer)


def test_finance_and_an_auditor_see_the_steps_another_unit_does_not(
    running: Running, parties: Parties, newcomer: Person
) -> None:
    declared = declare(running, parties.unit, declaration_for(newcomer))
    auditor = running.client(Role.AUDITOR, "500154-SJJ")
    other_unit = running.client(Role.UNIT, OTHER_UNIT)

    by_finance = get_declaration(running, parties.finance, declared.declaration_id)
    by_auditor = get_declaration(running, auditor, declared.declaration_id)
    error = refused(
        lambda: get_declaration(running, other_unit, declared.declaration_id)
    )

    assert [s.actor for s in by_finance.steps] == [UNIT]
    assert [s.actor for s in by_auditor.steps] == [UNIT]
    assert error.code() is grpc.StatusCode.NOT_FOUND


# -- refused declarations ------------------------------------------------------


Overrides = Callable[[Person], dict[str, str]]


def _wrong_check_digit(person: Person) -> dict[str, str]:
    last = person.id_number[-1]
    return {"id_number": person.id_number[:-1] + ("0" if last != "0" else "1")}


def _other_banks_card(person: Person) -> dict[str, str]:
    return {"account_number": make_card(random.Random(5), prefix=OTHER_BANK_PREFIX)}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param(
            _other_banks_card, "card", id="card-of-another-bank-declared-as-CQRCB"
        ),
        pytest.param(
            lambda p: {"bank_code": OTHER_BANK},
            "card",
            id="CQRCB-card-declared-as-another-bank",
        ),
        pytest.param(
            lambda p: {"application_reference": ""},
            "application_reference",
            id="missing-application-reference",
        ),
        pytest.param(
            lambda p: {"application_reference": "申请表 第1号"},
            "application_reference",
            id="malformed-application-reference",
        ),
        pytest.param(_wrong_check_digit, "id_number", id="ID-number-bad-check-digit"),
        pytest.param(
            lambda p: {"id_number": p.id_number[:-1]},
            "id_number",
            id="ID-number-too-short",
        ),
        pytest.param(lambda p: {"bank_code": "NOBANK"}, "bank_code", id="unknown-bank"),
        pytest.param(
            lambda p: {"account_kind": "信用卡"}, "account_kind", id="unknown-kind"
        ),
        pytest.param(
            lambda p: {"proxy_name": "代领人", "proxy_id_number": p.id_number},
            "proxy",
            id="beneficiary-as-own-proxy",
        ),
    ],
)
def test_malformed_declaration_is_refused_without_personal_data(
    running: Running,
    parties: Parties,
    newcomer: Person,
    overrides: Overrides,
    field: str,
) -> None:
    values = overrides(newcomer)
    count = registry_count(running)

    error = refused(
        lambda: declare(running, parties.unit, declaration_for(newcomer, **values))
    )

    details = error.details() or ""
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in details
    assert_no_personal_data(details, newcomer)
    assert all(value not in details for value in values.values() if len(value) > 8)
    assert registry_count(running) == count
    assert registered_account(running, newcomer) is None


@pytest.mark.parametrize(
    ("role", "org"),
    [
        pytest.param(Role.BANK, "CQRCB", id="agent-bank"),
        pytest.param(Role.DEPARTMENT, DEPARTMENT, id="department"),
        pytest.param(Role.AUDITOR, "500154-SJJ", id="auditor"),
        pytest.param(Role.FINANCE, FINANCE, id="finance"),
    ],
)
def test_only_a_unit_may_declare(
    running: Running, newcomer: Person, role: Role, org: str
) -> None:
    caller = running.client(role, org)

    error = refused(lambda: declare(running, caller, declaration_for(newcomer)))

    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert_no_personal_data(error.details() or "", newcomer)
    assert registered_account(running, newcomer) is None


def test_second_open_declaration_for_the_same_person_is_refused(
    running: Running, parties: Parties, newcomer: Person
) -> None:
    first = declare(running, parties.unit, declaration_for(newcomer))
    other_card = make_card(random.Random(11))
    other_unit = running.client(Role.UNIT, OTHER_UNIT)

    while_declared = refused(
        lambda: declare(
            running, other_unit, declaration_for(newcomer, account_number=other_card)
        )
    )
    review(running, parties.unit, first.declaration_id)
    while_reviewed = refused(
        lambda: declare(running, parties.unit, declaration_for(newcomer))
    )

    for error in (while_declared, while_reviewed):
        assert error.code() is grpc.StatusCode.ALREADY_EXISTS
        assert_no_personal_data(error.details() or "", newcomer)


# -- refused steps ---------------------------------------------------------------


def test_review_by_another_unit_is_not_found(
    running: Running, parties: Parties, newcomer: Person
) -> None:
    declared = declare(running, parties.unit, declaration_for(newcomer))
    other_unit = running.client(Role.UNIT, OTHER_UNIT)

    error = refused(lambda: review(running, other_unit, declared.declaration_id))
    shown = get_declaration(running, parties.unit, declared.declaration_id)

    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert shown.state == STATE.DECLARATION_STATE_DECLARED
    assert len(shown.steps) == 1


def test_confirmation_before_review_is_refused(
    running: Running, parties: Parties, newcomer: Person
) -> None:
    declared = declare(running, parties.unit, declaration_for(newcomer))

    error = refused(lambda: confirm(running, parties.finance, declared.declaration_id))

    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert registered_account(running, newcomer) is None


def test_confirmation_by_another_countys_finance_is_not_found(
    running: Running, parties: Parties, newcomer: Person
) -> None:
    declared = declare(running, parties.unit, declaration_for(newcomer))
    review(running, parties.unit, declared.declaration_id)
    other_finance = running.client(Role.FINANCE, OTHER_FINANCE)

    error = refused(lambda: confirm(running, other_finance, declared.declaration_id))
    shown = get_declaration(running, parties.finance, declared.declaration_id)

    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert shown.state == STATE.DECLARATION_STATE_REVIEWED
    assert registered_account(running, newcomer) is None


def test_unknown_declaration_is_not_found(running: Running, parties: Parties) -> None:
    error = refused(lambda: review(running, parties.unit, "D20260101-0000000000000000"))

    assert error.code() is grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "refused_by",
    [
        pytest.param("review", id="refused-at-review"),
        pytest.param("confirmation", id="refused-at-confirmation"),
    ],
)
def test_refusal_leaves_the_registry_unchanged(
    running: Running, parties: Parties, refused_by: str
) -> None:
    person = running.persons[3]
    registered = registered_account(running, person)
    count = registry_count(running)
    new_card = make_card(random.Random(23))
    declared = declare(
        running, parties.unit, declaration_for(person, account_number=new_card)
    )

    if refused_by == "review":
        final = review(running, parties.unit, declared.declaration_id, approve=False)
    else:
        review(running, parties.unit, declared.declaration_id)
        final = confirm(
            running, parties.finance, declared.declaration_id, approve=False
        )
    again = declare(
        running, parties.unit, declaration_for(person, account_number=new_card)
    )

    assert final.state == STATE.DECLARATION_STATE_REFUSED
    assert final.steps[-1].state == STATE.DECLARATION_STATE_REFUSED
    assert registered_account(running, person) == registered
    assert registry_count(running) == count
    # A refused declaration is closed: a new one may follow.
    assert again.state == STATE.DECLARATION_STATE_DECLARED
    with pytest.raises(grpc.RpcError) as error:
        review(running, parties.unit, declared.declaration_id)
    assert error.value.code() is grpc.StatusCode.FAILED_PRECONDITION


def test_change_of_a_registered_account_is_flagged_and_replaces_it(
    running: Running, parties: Parties
) -> None:
    person = running.persons[0]
    new_card = make_card(random.Random(31))
    changed = Person(person.name, person.id_number, new_card)
    count = registry_count(running)

    declared = declare(
        running, parties.unit, declaration_for(person, account_number=new_card)
    )
    review(running, parties.unit, declared.declaration_id)
    confirmed = confirm(running, parties.finance, declared.declaration_id)
    old_account = outcome_codes(running, parties.department, "b-old", [person], "50")
    new_account = outcome_codes(running, parties.department, "b-new", [changed], "60")

    assert declared.changes_registered_account
    assert confirmed.changes_registered_account
    assert registry_count(running) == count
    assert registered_account(running, person) == (
        running.gateway.core.tokenizer.account(new_card)
    )
    assert old_account == [["ACCOUNT_NOT_REGISTERED"]]
    assert new_account == [[]]


# -- the steps are append-only -------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("update-actor", id="update-actor"),
        pytest.param("update-time", id="update-time"),
        pytest.param("delete", id="delete"),
    ],
)
def test_database_refuses_to_change_recorded_steps(
    running: Running, parties: Parties, newcomer: Person, statement: str
) -> None:
    declared = declare(running, parties.unit, declaration_for(newcomer))
    steps = schema.declaration_steps
    mine = steps.c.declaration_id == declared.declaration_id
    change = {
        "update-actor": update(steps).where(mine).values(actor="500154-FORGED"),
        "update-time": update(steps)
        .where(mine)
        .values(at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)),
        "delete": delete(steps).where(mine),
    }[statement]

    engine = running.gateway.core.engine
    with pytest.raises(sqlalchemy.exc.DatabaseError) as error, engine.begin() as db:
        db.execute(change)
    shown = get_declaration(running, parties.unit, declared.declaration_id)

    assert "immutable" in str(error.value)
    assert [(s.actor, s.state) for s in shown.steps] == [
        (UNIT, STATE.DECLARATION_STATE_DECLARED)
    ]
