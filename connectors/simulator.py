"""A simulated agent bank core system, and the interbank network around it.

It plays what a real agent bank's core does behind the connector:
- account verification from the ledgers of every bank: an account held at
  another bank is answered from that bank's ledger, as a real agent bank
  answers through the interbank verification service;
- payment according to each account's ``status_at_payment``, which may differ
  from its status at verification (an account frozen in between);
- cross-bank credits marked RETURN_AFTER_PAYMENT are paid, then refunded by
  the beneficiary's bank after ``return_delay``.

Like a real core, it records which instruction ids it has paid, in its own
database, so a redelivered instruction is never paid twice. That database
holds instruction ids, outcomes and references only; no personal data. The
ledgers, which are personal data, are read from the ledger CSVs into a
separate SQLite database (``LedgerBook``) so that memory does not grow with
them: a named file that a bank's pullers share, or SQLite's private temporary
database, which nothing outlives.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import secrets
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from connectors.base import PaymentOutcome
from ykt.v1 import exchange_pb2

CHECK = exchange_pb2


@contextlib.contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taken before the first read.

    A failed COMMIT is rolled back too, so the connection can begin again.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _open_shared(database: Path, *, timeout: float) -> sqlite3.Connection:
    """A connection in WAL mode to a file that several processes share.

    WAL lets the pullers of one bank read while one of them writes, and a
    read costs no file lock. Switching a new file to WAL does not wait on the
    busy timeout, so processes starting together retry it.
    """
    database.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(
        database, check_same_thread=False, isolation_level=None, timeout=timeout
    )
    for attempt in range(50):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError:
            if attempt == 49:
                raise
            time.sleep(0.1)
    return db


@dataclass(frozen=True)
class LedgerAccount:
    bank_code: str
    holder_name: str
    holder_id_number: str
    status: str
    status_at_payment: str


def iter_ledger_accounts(directory: Path) -> Iterator[tuple[str, LedgerAccount]]:
    """(account number, account) for every row of every bank's ledger CSV."""
    for path in sorted(directory.glob("*.csv")):
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for row in csv.DictReader(handle):
                yield (
                    row["account"].strip(),
                    LedgerAccount(
                        bank_code=path.stem,
                        holder_name=_fold(row["holder_name"]),
                        holder_id_number=row["holder_id_number"].strip().upper(),
                        status=row["status"].strip(),
                        status_at_payment=row["status_at_payment"].strip(),
                    ),
                )


def load_ledgers(directory: Path) -> dict[str, LedgerAccount]:
    """Every ledger in memory: for small ledgers, such as a test's."""
    return dict(iter_ledger_accounts(directory))


class LedgerBook(Mapping[str, LedgerAccount]):
    """Every bank's ledger, looked up in SQLite instead of held in memory.

    A bank's core answers from its database. Holding a million accounts as
    Python objects made the simulator's memory grow with the batch; this keeps
    it flat. A named file is a copy of the ledger CSVs: built the first time,
    rebuilt when the folder or its files' names, sizes, inodes or change times
    differ, and shared by the pullers of one bank (the first to open it builds
    it, the others wait on its write lock and then find it current).

    Personal data: the copy holds names, ID numbers and account numbers, as
    the ledgers do. Without a file, the book is SQLite's private temporary
    database, which SQLite unlinks as soon as it creates it, so nothing is
    left behind even when the process is killed.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._lock = threading.Lock()

    @classmethod
    def open(cls, directory: Path, database: Path | None = None) -> LedgerBook:
        """The book of the ledger CSVs in ``directory``, kept in ``database``
        (shared, and reused while current) or, without one, in a private
        temporary database of this process only."""
        if database is None:
            db = sqlite3.connect("", check_same_thread=False, isolation_level=None)
        else:
            db = _open_shared(database, timeout=300)
        db.execute(
            "CREATE TABLE IF NOT EXISTS ledger (account TEXT PRIMARY KEY, "
            "bank_code TEXT, holder_name TEXT, holder_id_number TEXT, status TEXT, "
            "status_at_payment TEXT) WITHOUT ROWID"
        )
        db.execute("CREATE TABLE IF NOT EXISTS ledger_source (fingerprint TEXT)")
        fingerprint = _fingerprint(directory)
        with _immediate(db):
            stored = db.execute("SELECT fingerprint FROM ledger_source").fetchone()
            if stored is None or stored[0] != fingerprint:
                db.execute("DELETE FROM ledger")
                db.execute("DELETE FROM ledger_source")
                db.executemany(
                    "INSERT OR REPLACE INTO ledger VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        (
                            number,
                            a.bank_code,
                            a.holder_name,
                            a.holder_id_number,
                            a.status,
                            a.status_at_payment,
                        )
                        for number, a in iter_ledger_accounts(directory)
                    ),
                )
                # A ledger rewritten while it was read: keep the copy for this
                # process, but let the next opening build it again.
                if _fingerprint(directory) == fingerprint:
                    db.execute("INSERT INTO ledger_source VALUES (?)", (fingerprint,))
        return cls(db)

    def __getitem__(self, account_number: str) -> LedgerAccount:
        with self._lock:
            row = self._db.execute(
                "SELECT bank_code, holder_name, holder_id_number, status, "
                "status_at_payment FROM ledger WHERE account = ?",
                (account_number,),
            ).fetchone()
        if row is None:
            # Not the number itself: an exception message is no place for it.
            raise KeyError("no such account in the ledgers")
        return LedgerAccount(*row)

    def find_many(self, account_numbers: Iterable[str]) -> dict[str, LedgerAccount]:
        """The accounts of these numbers that the ledgers hold, by number: one
        query for them all instead of one per account."""
        with self._lock:
            rows = self._db.execute(
                "SELECT account, bank_code, holder_name, holder_id_number, status, "
                "status_at_payment FROM ledger "
                "WHERE account IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted(set(account_numbers))),),
            ).fetchall()
        return {row[0]: LedgerAccount(*row[1:]) for row in rows}

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            numbers = self._db.execute("SELECT account FROM ledger").fetchall()
        return (number for (number,) in numbers)

    def __len__(self) -> int:
        with self._lock:
            count: int = self._db.execute("SELECT count(*) FROM ledger").fetchone()[0]
        return count

    def close(self) -> None:
        self._db.close()


def _fingerprint(directory: Path) -> str:
    """What tells one set of ledger CSVs from another without reading them.

    The change time and inode are in it because the modification time can be
    set back (``cp -p``, ``tar x``) and a status change (NORMAL to FROZEN)
    keeps a file's size.
    """
    files = []
    for path in sorted(directory.glob("*.csv")):
        stat = path.stat()
        files.append(
            [path.name, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
        )
    return json.dumps([str(directory.resolve()), files])


def _fold(name: str) -> str:
    return unicodedata.normalize("NFKC", name).strip()


def _find_accounts(
    ledgers: Mapping[str, LedgerAccount], numbers: Iterable[str]
) -> dict[str, LedgerAccount]:
    if isinstance(ledgers, LedgerBook):
        return ledgers.find_many(numbers)
    return {number: ledgers[number] for number in set(numbers) if number in ledgers}


def _answer(
    account: LedgerAccount | None, holder_name: str, holder_id_number: str
) -> exchange_pb2.AccountCheckStatus.ValueType:
    """What the bank answers to a check of ``account`` for this holder."""
    if account is None:
        return CHECK.ACCOUNT_CHECK_STATUS_NOT_FOUND
    if account.status == "CLOSED":
        return CHECK.ACCOUNT_CHECK_STATUS_CLOSED
    if account.status == "FROZEN":
        return CHECK.ACCOUNT_CHECK_STATUS_FROZEN
    if (
        account.holder_name != _fold(holder_name)
        or account.holder_id_number != holder_id_number.strip().upper()
    ):
        return CHECK.ACCOUNT_CHECK_STATUS_HOLDER_MISMATCH
    return CHECK.ACCOUNT_CHECK_STATUS_CONFIRMED


class SimulatedBankCore:
    def __init__(
        self,
        bank_code: str,
        ledgers: Mapping[str, LedgerAccount],
        database: Path,
        *,
        return_delay: dt.timedelta = dt.timedelta(seconds=3),
    ) -> None:
        self.bank_code = bank_code
        self._ledgers = ledgers
        self._return_delay = return_delay
        self._lock = threading.Lock()
        self._db = _open_shared(database, timeout=30)
        # A set's payments commit together; in WAL mode NORMAL keeps every
        # committed payment through a crash of the process, which is what the
        # simulator is tested against, without a disk flush per commit.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS payments (instruction_id TEXT PRIMARY KEY, "
            "status INTEGER, reason_code TEXT, bank_reference TEXT, completed_at TEXT, "
            "return_due TEXT, return_reported INTEGER DEFAULT 0, "
            "result_reported INTEGER DEFAULT 0, origin TEXT DEFAULT '')"
        )
        # What is still to report is found by index, not by reading every
        # payment the core ever made.
        self._db.execute(
            "CREATE INDEX IF NOT EXISTS payments_unreported ON payments "
            "(result_reported) WHERE result_reported = 0"
        )
        self._db.execute(
            "CREATE INDEX IF NOT EXISTS payments_returns_due ON payments "
            "(return_due) WHERE return_due IS NOT NULL AND return_reported = 0"
        )

    def verify_accounts(
        self, checks: Sequence[exchange_pb2.AccountCheck]
    ) -> list[exchange_pb2.AccountCheckStatus.ValueType]:
        """The answer to each check, in order; the ledgers are read once."""
        accounts = _find_accounts(self._ledgers, (c.account_number for c in checks))
        return [
            _answer(accounts.get(c.account_number), c.holder_name, c.holder_id_number)
            for c in checks
        ]

    def verify_account(
        self, holder_name: str, holder_id_number: str, account_number: str
    ) -> exchange_pb2.AccountCheckStatus.ValueType:
        return _answer(self._ledgers.get(account_number), holder_name, holder_id_number)

    def pay_all(
        self, instructions: Sequence[exchange_pb2.Instruction], *, origin: str = ""
    ) -> list[PaymentOutcome]:
        """Pay each instruction once, in one write transaction; the outcome of
        each, in order.

        The look-ups and the payments form one transaction, so two processes
        of one bank (several pullers) cannot both pay an id: the second waits
        for the first's commit, then finds its payments. A crash before the
        commit leaves none of the set paid, and a redelivery pays it whole.
        """
        accounts = _find_accounts(
            self._ledgers, (i.account_number for i in instructions)
        )
        with self._lock, _immediate(self._db):
            outcomes = self._recorded([i.instruction_id for i in instructions])
            new_rows = []
            for instruction in instructions:
                if instruction.instruction_id in outcomes:
                    continue
                outcome, return_due = self._decide(
                    instruction, origin, accounts.get(instruction.account_number)
                )
                outcomes[instruction.instruction_id] = outcome
                new_rows.append(
                    (
                        outcome.instruction_id,
                        outcome.status,
                        outcome.reason_code,
                        outcome.bank_reference,
                        outcome.completed_at.isoformat(),
                        return_due.isoformat() if return_due else None,
                        origin,
                    )
                )
            self._db.executemany(
                "INSERT INTO payments VALUES (?, ?, ?, ?, ?, ?, 0, 0, ?)", new_rows
            )
        return [outcomes[i.instruction_id] for i in instructions]

    def pay(
        self, instruction: exchange_pb2.Instruction, *, origin: str = ""
    ) -> PaymentOutcome:
        return self.pay_all([instruction], origin=origin)[0]

    def _recorded(self, instruction_ids: Sequence[str]) -> dict[str, PaymentOutcome]:
        """The outcomes already recorded for these ids; inside the transaction."""
        rows = self._db.execute(
            "SELECT instruction_id, status, reason_code, bank_reference, "
            "completed_at, origin FROM payments "
            "WHERE instruction_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(instruction_ids)),),
        )
        return {
            iid: PaymentOutcome(
                iid, status, reason, reference, dt.datetime.fromisoformat(at), origin
            )
            for iid, status, reason, reference, at, origin in rows
        }

    def _decide(
        self,
        instruction: exchange_pb2.Instruction,
        origin: str,
        account: LedgerAccount | None,
    ) -> tuple[PaymentOutcome, dt.datetime | None]:
        now = dt.datetime.now(dt.UTC)
        reference = f"{self.bank_code}{now:%Y%m%d}{secrets.token_hex(5).upper()}"

        def failed(reason: str) -> PaymentOutcome:
            return PaymentOutcome(
                instruction.instruction_id,
                CHECK.RESULT_STATUS_FAILED,
                reason,
                reference,
                now,
                origin,
            )

        if account is None:
            return failed("ACCOUNT_NOT_FOUND"), None
        if account.status_at_payment == "FROZEN":
            return failed("ACCOUNT_FROZEN"), None
        if account.status_at_payment == "CLOSED":
            return failed("ACCOUNT_CLOSED"), None
        paid = PaymentOutcome(
            instruction.instruction_id,
            CHECK.RESULT_STATUS_PAID,
            "",
            reference,
            now,
            origin,
        )
        if account.status_at_payment == "RETURN_AFTER_PAYMENT":
            return paid, now + self._return_delay
        return paid, None

    def unreported(self, now: dt.datetime) -> list[PaymentOutcome]:
        """Outcomes not yet reported: first results, and refunds now due."""
        with self._lock:
            first = self._db.execute(
                "SELECT instruction_id, status, reason_code, bank_reference, "
                "completed_at, origin FROM payments WHERE result_reported = 0 "
                "ORDER BY rowid"
            ).fetchall()
            returns = self._db.execute(
                "SELECT instruction_id, bank_reference, origin FROM payments "
                "WHERE return_due IS NOT NULL AND return_reported = 0 "
                "AND result_reported = 1 AND return_due <= ? ORDER BY rowid",
                (now.isoformat(),),
            ).fetchall()
        outcomes = [
            PaymentOutcome(iid, st, rc, ref, dt.datetime.fromisoformat(at), origin)
            for iid, st, rc, ref, at, origin in first
        ]
        outcomes += [
            PaymentOutcome(
                iid,
                CHECK.RESULT_STATUS_RETURNED,
                "ACCOUNT_CLOSED",
                f"{ref}R",
                now,
                origin,
            )
            for iid, ref, origin in returns
        ]
        return outcomes

    def mark_reported(self, outcomes: list[PaymentOutcome]) -> None:
        with self._lock, _immediate(self._db):
            self._db.executemany(
                "UPDATE payments SET return_reported = 1 WHERE instruction_id = ?",
                [
                    (o.instruction_id,)
                    for o in outcomes
                    if o.status == CHECK.RESULT_STATUS_RETURNED
                ],
            )
            self._db.executemany(
                "UPDATE payments SET result_reported = 1 WHERE instruction_id = ?",
                [
                    (o.instruction_id,)
                    for o in outcomes
                    if o.status != CHECK.RESULT_STATUS_RETURNED
                ],
            )
