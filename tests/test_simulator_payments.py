"""The simulated bank's core paying and checking a whole set at a time."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from connectors.base import PaymentOutcome
from connectors.simulator import LedgerAccount, LedgerBook, SimulatedBankCore
from tests.fakes import Person, people, write_reference
from ykt.v1 import exchange_pb2

BANK = "CQRCB"


def _ledgers(persons: list[Person], statuses: list[str]) -> dict[str, LedgerAccount]:
    return {
        p.account: LedgerAccount(BANK, p.name, p.id_number, status, status)
        for p, status in zip(persons, statuses, strict=True)
    }


def _instructions(persons: list[Person]) -> list[exchange_pb2.Instruction]:
    return [
        exchange_pb2.Instruction(
            instruction_id=f"b-1.r{n}",
            payee_name=p.name,
            account_number=p.account,
            amount_fen=10_000 + n,
        )
        for n, p in enumerate(persons)
    ]


def _payments(database: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(database) as db:
        return list(
            db.execute("SELECT instruction_id, status FROM payments ORDER BY rowid")
        )


def test_a_set_is_paid_in_order_with_each_accounts_own_outcome(
    tmp_path: Path,
) -> None:
    persons = people(3, seed=21)
    core = SimulatedBankCore(
        BANK, _ledgers(persons, ["NORMAL", "FROZEN", "CLOSED"]), tmp_path / "core.db"
    )
    instructions = _instructions(persons)
    missing = exchange_pb2.Instruction(
        instruction_id="b-1.r9", account_number="6214590000000000000", amount_fen=1
    )

    outcomes = core.pay_all([*instructions, missing], origin="b-1.i0")

    assert [o.instruction_id for o in outcomes] == [
        "b-1.r0",
        "b-1.r1",
        "b-1.r2",
        "b-1.r9",
    ]
    assert [(o.status, o.reason_code) for o in outcomes] == [
        (exchange_pb2.RESULT_STATUS_PAID, ""),
        (exchange_pb2.RESULT_STATUS_FAILED, "ACCOUNT_FROZEN"),
        (exchange_pb2.RESULT_STATUS_FAILED, "ACCOUNT_CLOSED"),
        (exchange_pb2.RESULT_STATUS_FAILED, "ACCOUNT_NOT_FOUND"),
    ]
    assert {o.origin for o in outcomes} == {"b-1.i0"}
    assert len(_payments(tmp_path / "core.db")) == 4


def test_a_set_delivered_again_is_answered_from_the_record_and_paid_once(
    tmp_path: Path,
) -> None:
    persons = people(4, seed=22)
    ledgers = _ledgers(persons, ["NORMAL"] * 4)
    database = tmp_path / "core.db"
    instructions = _instructions(persons)
    first = SimulatedBankCore(BANK, ledgers, database).pay_all(
        instructions[:2], origin="b-1.i0"
    )

    # Another process of the same bank gets the set again, now whole.
    again = SimulatedBankCore(BANK, ledgers, database).pay_all(
        instructions, origin="b-1.i0"
    )

    assert again[:2] == first
    assert [row[0] for row in _payments(database)] == [
        "b-1.r0",
        "b-1.r1",
        "b-1.r2",
        "b-1.r3",
    ]


def test_an_instruction_named_twice_in_a_set_is_paid_once(tmp_path: Path) -> None:
    persons = people(2, seed=23)
    core = SimulatedBankCore(BANK, _ledgers(persons, ["NORMAL"] * 2), tmp_path / "c.db")
    first, second = _instructions(persons)

    outcomes = core.pay_all([first, second, first])

    assert outcomes[0] == outcomes[2]
    assert len(_payments(tmp_path / "c.db")) == 2


def test_a_failure_before_the_commit_leaves_none_of_the_set_paid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    persons = people(3, seed=24)
    core = SimulatedBankCore(BANK, _ledgers(persons, ["NORMAL"] * 3), tmp_path / "c.db")
    decide = core._decide
    decided: list[str] = []

    def dies_on_the_third(
        instruction: exchange_pb2.Instruction,
        origin: str,
        account: LedgerAccount | None,
    ) -> tuple[PaymentOutcome, dt.datetime | None]:
        if len(decided) == 2:
            raise RuntimeError("the core went down")
        decided.append(instruction.instruction_id)
        return decide(instruction, origin, account)

    monkeypatch.setattr(core, "_decide", dies_on_the_third)
    with pytest.raises(RuntimeError):
        core.pay_all(_instructions(persons))
    assert _payments(tmp_path / "c.db") == []

    monkeypatch.setattr(core, "_decide", decide)
    outcomes = core.pay_all(_instructions(persons))

    assert {o.status for o in outcomes} == {exchange_pb2.RESULT_STATUS_PAID}
    assert len(_payments(tmp_path / "c.db")) == 3


def test_a_check_set_is_answered_as_one_check_at_a_time_would_be(
    tmp_path: Path,
) -> None:
    persons = people(4, seed=25)
    write_reference(tmp_path / "ref", persons)
    book = LedgerBook.open(tmp_path / "ref" / "banks", tmp_path / "ledgers.db")
    core = SimulatedBankCore(BANK, book, tmp_path / "core.db")
    first, second = persons[0], persons[1]
    checks = [
        exchange_pb2.AccountCheck(
            check_id="c0",
            holder_name=first.name,
            holder_id_number=first.id_number,
            account_number=first.account,
        ),
        exchange_pb2.AccountCheck(
            check_id="c1",
            holder_name=second.name,
            holder_id_number=first.id_number,
            account_number=second.account,
        ),
        exchange_pb2.AccountCheck(
            check_id="c2",
            holder_name=first.name,
            holder_id_number=first.id_number,
            account_number="6214590000000000000",
        ),
        exchange_pb2.AccountCheck(
            check_id="c3",
            holder_name=first.name,
            holder_id_number=first.id_number,
            account_number=first.account,
        ),
    ]

    statuses = core.verify_accounts(checks)

    assert statuses == [
        exchange_pb2.ACCOUNT_CHECK_STATUS_CONFIRMED,
        exchange_pb2.ACCOUNT_CHECK_STATUS_HOLDER_MISMATCH,
        exchange_pb2.ACCOUNT_CHECK_STATUS_NOT_FOUND,
        exchange_pb2.ACCOUNT_CHECK_STATUS_CONFIRMED,
    ]
    assert statuses == [
        core.verify_account(c.holder_name, c.holder_id_number, c.account_number)
        for c in checks
    ]


class _CommitFailsOnce:
    """A core database whose first COMMIT fails, as a full disk would."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.failed = False

    @property
    def in_transaction(self) -> bool:
        return self._db.in_transaction

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT" and not self.failed:
            self.failed = True
            raise sqlite3.OperationalError("disk I/O error")
        return self._db.execute(sql, *args)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        return self._db.executemany(sql, rows)


def test_a_failed_commit_is_rolled_back_and_the_core_can_pay_again(
    tmp_path: Path,
) -> None:
    persons = people(2, seed=26)
    core = SimulatedBankCore(BANK, _ledgers(persons, ["NORMAL"] * 2), tmp_path / "c.db")
    real = core._db
    core._db = _CommitFailsOnce(real)  # type: ignore[assignment]

    with pytest.raises(sqlite3.OperationalError):
        core.pay_all(_instructions(persons))
    assert not real.in_transaction
    assert _payments(tmp_path / "c.db") == []

    outcomes = core.pay_all(_instructions(persons))

    assert {o.status for o in outcomes} == {exchange_pb2.RESULT_STATUS_PAID}
    assert len(_payments(tmp_path / "c.db")) == 2
