"""The audit log: what it records, that it holds no personal data, and that
``ykt audit verify`` names the first edited, deleted, inserted or reordered
entry, each change made directly in the database with the triggers dropped.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from connectors.grpc_pull import GrpcPullRunner
from connectors.simulator import SimulatedBankCore, load_ledgers
from gateway import audit, cli
from gateway.client import record_funds_release, submit
from gateway.core import utcnow
from keys.identity import Role
from keys.trust import TrustStore
from tests.conftest import Running, start_gateway
from tests.test_submission import records_for, requests_for


@dataclass(frozen=True)
class Audited:
    """A gateway's state after a small batch was paid, the gateway stopped."""

    state: Path
    database: Path
    persons: list[object]


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Audited:
    base = tmp_path_factory.mktemp("audited")
    running = start_gateway(base, None)
    _pay_a_batch(running, base)
    running.gateway.stop(0)
    return Audited(base / "state", base / "state" / "gateway.db", running.persons)


def _pay_a_batch(running: Running, base: Path) -> None:
    department = running.client(Role.DEPARTMENT, "500154-NYNC")
    with running.channel(department) as channel:
        submit(channel, requests_for(department, records_for(running.persons[:6])))
        record_funds_release(channel, "b-1", "GK-2026-0001")
    bank = running.client(Role.BANK, "CQRCB")
    core = SimulatedBankCore(
        "CQRCB", load_ledgers(running.reference / "banks"), base / "bank.db"
    )
    trust = TrustStore(running.ca.ca_path, [running.ca.crl_path], clock=utcnow)
    with running.channel(bank) as channel:
        runner = GrpcPullRunner(channel, core, bank.signer(), trust)
        for _ in range(10):
            if not runner.run_once():
                break


def _copy(audited: Audited, tmp_path: Path) -> Path:
    copy = tmp_path / "copy.db"
    shutil.copy(audited.database, copy)
    return copy


def _verify(
    audited: Audited, database: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    status = cli.main(
        [
            "audit",
            "verify",
            "--state",
            str(audited.state),
            "--database-url",
            f"sqlite:///{database}",
        ]
    )
    return status, capsys.readouterr().out


def _tamper(database: Path, *statements: str) -> None:
    """Run SQL with the audit triggers dropped, as an intruder would."""
    connection = sqlite3.connect(database)
    try:
        connection.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        connection.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        for statement in statements:
            connection.execute(statement)
        connection.commit()
    finally:
        connection.close()


def _actions(database: Path) -> list[str]:
    connection = sqlite3.connect(database)
    try:
        return [r[0] for r in connection.execute("SELECT action FROM audit_log")]
    finally:
        connection.close()


def test_every_step_of_the_flow_is_recorded(audited: Audited) -> None:
    actions = _actions(audited.database)
    for action in (
        "batch.submitted",
        "set.signed",
        "set.leased",
        "checks.answered",
        "funds.released",
        "set.acknowledged",
        "results.recorded",
    ):
        assert action in actions, action
    assert actions.index("batch.submitted") < actions.index("results.recorded")


def test_the_audit_log_holds_no_personal_data(audited: Audited) -> None:
    connection = sqlite3.connect(audited.database)
    try:
        rows = connection.execute(
            "SELECT actor, action, subject, detail FROM audit_log"
        ).fetchall()
    finally:
        connection.close()
    text_of_log = "\n".join(" ".join(row) for row in rows)
    assert rows
    for person in audited.persons:
        for value in (person.name, person.id_number, person.account):  # type: ignore[attr-defined]
            assert value not in text_of_log


def test_an_untouched_log_verifies(
    audited: Audited, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, printed = _verify(audited, _copy(audited, tmp_path), capsys)
    assert status == 0
    assert "audit log intact" in printed
    assert "0 signed checkpoints" not in printed


@pytest.mark.parametrize(
    ("tampering", "expected"),
    [
        pytest.param(
            lambda: ("UPDATE audit_log SET detail = 'records=1' WHERE seq = 3",),
            "entry 3: edited",
            id="edited-detail",
        ),
        pytest.param(
            lambda: ("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 5",),
            "entry 5: edited",
            id="edited-actor",
        ),
        pytest.param(
            lambda: ("DELETE FROM audit_log WHERE seq = 4",),
            "entry 4: missing",
            id="deleted",
        ),
        pytest.param(
            lambda: (
                "UPDATE audit_log SET seq = -1 WHERE seq = 4",
                "UPDATE audit_log SET seq = 4 WHERE seq = 5",
                "UPDATE audit_log SET seq = 5 WHERE seq = -1",
            ),
            "entry 4: edited or moved",
            id="reordered",
        ),
        pytest.param(
            lambda: (
                "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 6",
                "UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1006",
                "INSERT INTO audit_log SELECT 6, at, 'intruder', action, subject, "
                "detail, prev_hash, entry_hash FROM audit_log WHERE seq = 5",
            ),
            "entry 6: edited",
            id="inserted",
        ),
    ],
)
def test_a_changed_log_names_the_first_bad_entry(
    audited: Audited,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tampering: Callable[[], tuple[str, ...]],
    expected: str,
) -> None:
    database = _copy(audited, tmp_path)
    _tamper(database, *tampering())
    status, printed = _verify(audited, database, capsys)
    assert status == 1
    assert f"AUDIT LOG BROKEN: {expected}" in printed


def test_a_truncated_log_is_caught_by_its_signed_checkpoint(
    audited: Audited, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = _copy(audited, tmp_path)
    last = len(_actions(database))
    _tamper(
        database, "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)"
    )
    status, printed = _verify(audited, database, capsys)
    assert status == 1
    assert f"entry {last}: missing" in printed


def test_a_rewritten_chain_does_not_match_its_checkpoint(
    audited: Audited, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An intruder who rewrites an entry and recomputes every hash after it
    # keeps the chain consistent; only the signed checkpoint shows it.
    database = _copy(audited, tmp_path)
    engine = create_engine(f"sqlite:///{database}")
    _tamper(database, "UPDATE audit_log SET detail = 'nothing happened' WHERE seq = 2")
    with engine.begin() as connection:
        rows = connection.execute(
            text(
                "SELECT seq, at, actor, action, subject, detail FROM audit_log "
                "ORDER BY seq"
            )
        ).all()
        prev = audit.GENESIS
        for row in rows:
            at = _aware(row.at)
            digest = audit.entry_hash(
                row.seq, at, row.actor, row.action, row.subject, row.detail, prev
            )
            connection.execute(
                text(
                    "UPDATE audit_log SET prev_hash = :p, entry_hash = :h "
                    "WHERE seq = :s"
                ),
                {"p": prev, "h": digest, "s": row.seq},
            )
            prev = digest
    engine.dispose()
    status, printed = _verify(audited, database, capsys)
    assert status == 1
    assert "does not match the signed checkpoint" in printed


def test_the_database_refuses_to_change_audit_rows(
    audited: Audited, tmp_path: Path
) -> None:
    engine = create_engine(f"sqlite:///{_copy(audited, tmp_path)}")
    for statement in (
        "UPDATE audit_log SET detail = 'x' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 1",
        "DELETE FROM audit_checkpoints",
    ):
        with pytest.raises(DBAPIError, match="immutable"), engine.begin() as c:
            c.execute(text(statement))
    engine.dispose()


def _aware(value: object) -> dt.datetime:
    """A naive UTC time as SQLite stores it, made aware."""
    return dt.datetime.fromisoformat(str(value)).replace(tzinfo=dt.UTC)
