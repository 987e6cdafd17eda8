"""The simulated bank's ledgers, looked up from a SQLite copy of the CSVs."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
from pathlib import Path

import pytest

from connectors.simulator import LedgerBook, SimulatedBankCore, load_ledgers
from tests.fakes import people, write_reference
from ykt.v1 import exchange_pb2


def _reference(tmp_path: Path, count: int = 40) -> Path:
    write_reference(tmp_path / "ref", people(count, seed=11))
    return tmp_path / "ref" / "banks"


def test_the_ledger_book_answers_as_the_ledgers_in_memory(tmp_path: Path) -> None:
    banks = _reference(tmp_path)
    in_memory = load_ledgers(banks)

    book = LedgerBook.open(banks, tmp_path / "ledgers.db")

    assert len(book) == len(in_memory) == 40
    assert set(book) == set(in_memory)
    for number, account in in_memory.items():
        assert book[number] == account
    assert book.get("6214590000000000000") is None


def test_a_current_ledger_book_is_not_rebuilt(tmp_path: Path) -> None:
    banks = _reference(tmp_path)
    LedgerBook.open(banks, tmp_path / "ledgers.db").close()
    with sqlite3.connect(tmp_path / "ledgers.db") as db:
        db.execute("UPDATE ledger SET status = 'FROZEN'")

    book = LedgerBook.open(banks, tmp_path / "ledgers.db")

    assert {book[number].status for number in book} == {"FROZEN"}


def test_a_changed_ledger_csv_rebuilds_the_book(tmp_path: Path) -> None:
    banks = _reference(tmp_path)
    LedgerBook.open(banks, tmp_path / "ledgers.db").close()
    ledger = banks / "CQRCB.csv"
    lines = ledger.read_text(encoding="utf-8").splitlines()
    ledger.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    stat = ledger.stat()
    os.utime(ledger, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    book = LedgerBook.open(banks, tmp_path / "ledgers.db")

    assert len(book) == 39
    assert dict(book.items()) == load_ledgers(banks)


def test_a_status_change_that_keeps_size_and_mtime_rebuilds_the_book(
    tmp_path: Path,
) -> None:
    # NORMAL, FROZEN and CLOSED are all six letters, and `cp -p` or `tar x`
    # sets the modification time back: the book must still see the change.
    banks = _reference(tmp_path, count=5)
    ledger = banks / "CQRCB.csv"
    LedgerBook.open(banks, tmp_path / "ledgers.db").close()
    before = ledger.stat()
    text = ledger.read_bytes()
    assert b",NORMAL," in text
    ledger.write_bytes(text.replace(b",NORMAL,", b",FROZEN,", 1))
    os.utime(ledger, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert ledger.stat().st_size == before.st_size

    book = LedgerBook.open(banks, tmp_path / "ledgers.db")

    assert dict(book.items()) == load_ledgers(banks)
    assert "FROZEN" in {account.status for account in book.values()}


def test_a_book_without_a_file_leaves_no_copy_of_the_ledgers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The copy holds names and ID numbers; a killed simulator must not leave
    # it in a temporary folder.
    banks = _reference(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("SQLITE_TMPDIR", str(scratch))
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    book = LedgerBook.open(banks)

    assert dict(book.items()) == load_ledgers(banks)
    assert list(scratch.iterdir()) == []
    book.close()


def test_a_missing_account_is_not_named_in_the_error(tmp_path: Path) -> None:
    book = LedgerBook.open(_reference(tmp_path))
    number = "6214590000000000000"

    with pytest.raises(KeyError) as raised:
        book[number]

    assert number not in str(raised.value)


def test_pullers_opening_one_book_together_all_see_every_account(
    tmp_path: Path,
) -> None:
    banks = _reference(tmp_path, count=400)
    books: list[LedgerBook] = []
    failures: list[BaseException] = []

    def open_book() -> None:
        try:
            books.append(LedgerBook.open(banks, tmp_path / "ledgers.db"))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=open_book) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert [len(book) for book in books] == [400] * 4


def test_the_core_verifies_accounts_from_the_ledger_book(tmp_path: Path) -> None:
    persons = people(3, seed=5)
    write_reference(tmp_path / "ref", persons)
    book = LedgerBook.open(tmp_path / "ref" / "banks", tmp_path / "ledgers.db")
    core = SimulatedBankCore("CQRCB", book, tmp_path / "core.db")
    first, second = persons[0], persons[1]

    confirmed = core.verify_account(first.name, first.id_number, first.account)
    mismatch = core.verify_account(second.name, first.id_number, second.account)
    missing = core.verify_account(first.name, first.id_number, "6214590000000000000")

    assert confirmed == exchange_pb2.ACCOUNT_CHECK_STATUS_CONFIRMED
    assert mismatch == exchange_pb2.ACCOUNT_CHECK_STATUS_HOLDER_MISMATCH
    assert missing == exchange_pb2.ACCOUNT_CHECK_STATUS_NOT_FOUND
