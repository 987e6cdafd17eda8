"""The file connectors end to end: a real gateway, real certificates, real files.

What these tests pin down, for both file styles (``fixed-width-file`` and
``iso20022-file``), with the agent bank PSBC exchanging files with the
gateway through ``<exchange>/PSBC/{to-bank,from-bank,refused,kept}``:

  * A released batch is checked, instructed, paid and reported through files
    alone, and closes with every record PAID. The gateway's own delivery
    thread does it as well as a delivery the test drives round by round.
  * Every file is gone once it was dealt with: acknowledged instruction and
    check files, answers, acknowledgements and result files. Nothing is
    refused. Told to keep exchange files, the gateway moves them to
    ``kept/`` instead, where the bank no longer sees them.
  * Threats: a result file whose bytes changed after signing, one signed by
    another bank, and an acknowledgement naming other bytes than the
    gateway wrote are each moved to ``refused/`` with a ``.why`` note,
    counted as a dead letter, and change no record. A half-written
    temporary file is not read at all.
  * An instruction set the bank's format cannot carry (a payee name GBK
    cannot encode, for the fixed-width style) becomes a dead letter at once:
    no file is written, and no record is paid.

The delivery the test drives runs in the test thread, so these tests do not
depend on timing. The gateway started for them has no delivery thread of its
own unless a test asks for one (``start_exchange_gateway(file_thread=True)``);
two deliveries over one folder would race. Every person is fictional
(``tests.fakes``). The helpers here are shared with ``test_crash_recovery``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors import exchange_files
from connectors.file_bank import FileBankRunner
from connectors.file_gateway import FileDelivery
from connectors.file_protocol import ACK, BankFolders, Style, encode_ack
from connectors.simulator import SimulatedBankCore, load_ledgers
from gateway.client import ClientCredentials, record_funds_release, submit
from gateway.core import Clock
from gateway.server import build
from gateway.states import RecordState, SetKind, SetState
from gateway.store import schema
from keys.identity import Role
from keys.trust import TrustStore
from tests.conftest import Running, start_gateway
from tests.fakes import Person, make_card, make_id, people
from tests.test_submission import records_for, requests_for
from ykt.v1 import batch_pb2, services_pb2, services_pb2_grpc

BANK = "PSBC"
OTHER_BANK = "CQRCB"
DEPARTMENT = "500154-NYNC"
STYLES = [Style.FIXED_WIDTH, Style.ISO20022]
# A generous bound for anything the test waits on; never a timing assertion.
WAIT_SECONDS = 60.0


# -- a gateway whose agent bank exchanges files (shared with crash tests) ------


def start_exchange_gateway(
    tmp_path: Path,
    database_url: str | None,
    connector: str,
    *,
    persons: list[Person] | None = None,
    clock: Clock | None = None,
    file_thread: bool = False,
    keep_files: bool = False,
) -> Running:
    """A real gateway on port 0 whose county pays CQ-NY-001 through PSBC,
    connected in the style ``connector``; without ``file_thread`` the test
    drives a ``FileDelivery`` of its own."""
    return start_gateway(
        tmp_path,
        database_url,
        clock,
        persons=persons,
        bank=BANK,
        connector=connector,
        file_deliveries=file_thread,
        keep_files=keep_files,
    )


def restart_gateway(running: Running, clock: Clock | None = None) -> Running:
    """Stop the gateway and build a new one over the same state, database
    and port, as an operator restarting it after a crash would."""
    port = running.gateway.port
    running.gateway.stop(0)
    config = dataclasses.replace(running.config, listen=f"127.0.0.1:{port}")
    gateway = build(config, clock=clock)
    gateway.server.start()
    return dataclasses.replace(running, gateway=gateway, config=config)


def exchange_root(tmp_path: Path) -> Path:
    """The folder ``dev_config`` names for file exchange."""
    return tmp_path / "state" / "exchange"


@dataclass
class Bank:
    """The agent bank PSBC as a test plays it: credentials, core, folders."""

    credentials: ClientCredentials
    trust: TrustStore
    ledgers: Path
    core_database: Path
    folders: BankFolders
    clock: Callable[[], dt.datetime]

    def core(self) -> SimulatedBankCore:
        """A core over the bank's durable database: a new one is a restart."""
        return SimulatedBankCore(
            BANK,
            load_ledgers(self.ledgers),
            self.core_database,
            return_delay=dt.timedelta(0),
        )

    def file_runner(
        self, style: Style, core: object | None = None, **kwargs: object
    ) -> FileBankRunner:
        return FileBankRunner(
            style,
            self.folders.root,
            core or self.core(),  # type: ignore[arg-type]
            self.credentials.signer(),
            self.trust,
            clock=self.clock,
            **kwargs,  # type: ignore[arg-type]
        )


def bank_for(
    running: Running,
    tmp_path: Path,
    clock: Callable[[], dt.datetime] | None = None,
) -> Bank:
    clock = clock or (lambda: dt.datetime.now(dt.UTC))
    return Bank(
        credentials=running.client(Role.BANK, BANK),
        trust=TrustStore(running.ca.ca_path, [running.ca.crl_path], clock=clock),
        ledgers=running.reference / "banks",
        core_database=tmp_path / "bank" / "core.db",
        folders=BankFolders(exchange_root(tmp_path), BANK).create(),
        clock=clock,
    )


def submit_released(
    running: Running, persons: list[Person], batch_id: str = "b-1"
) -> None:
    """Submit a batch for ``persons`` and record its funds release."""
    department = running.client(Role.DEPARTMENT, DEPARTMENT)
    with running.channel(department) as channel:
        submit(channel, requests_for(department, records_for(persons), batch_id))
        record_funds_release(channel, batch_id, f"GK-{batch_id}")


def batch_state(running: Running, batch_id: str = "b-1") -> str:
    with running.gateway.core.engine.connect() as connection:
        state: str = connection.execute(
            select(schema.batches.c.state).where(schema.batches.c.batch_id == batch_id)
        ).scalar_one()
    return state


def record_states(running: Running, batch_id: str = "b-1") -> dict[str, str]:
    """Record id -> the gateway's internal state."""
    records = schema.records
    with running.gateway.core.engine.connect() as connection:
        rows = connection.execute(
            select(records.c.record_id, records.c.state).where(
                records.c.batch_id == batch_id
            )
        ).all()
    return {row.record_id: row.state for row in rows}


def result_count(running: Running) -> int:
    with running.gateway.core.engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).select_from(schema.results)
            ).scalar_one()
        )


def set_states(running: Running, kind: SetKind) -> dict[str, str]:
    sets = schema.exchange_sets
    with running.gateway.core.engine.connect() as connection:
        rows = connection.execute(
            select(sets.c.set_id, sets.c.state).where(sets.c.kind == kind.value)
        ).all()
    return {row.set_id: row.state for row in rows}


def outcomes(running: Running, batch_id: str = "b-1") -> list[int]:
    """What the department sees for each record, through its own API."""
    department = running.client(Role.DEPARTMENT, DEPARTMENT)
    with running.channel(department) as channel:
        stub = services_pb2_grpc.DepartmentServiceStub(channel)
        listed = stub.ListRecords(services_pb2.ListRecordsRequest(batch_id=batch_id))
        return [item.outcome for item in listed]


def dead_letters(running: Running, kind: str) -> float:
    value = running.gateway.metrics.registry.get_sample_value(
        "ykt_dead_letters_total", {"bank": BANK, "kind": kind}
    )
    return value or 0.0


def entries(folder: Path) -> list[str]:
    """Every entry of a folder, hidden temporary files included."""
    return sorted(path.name for path in folder.iterdir())


def drive(
    delivery: FileDelivery,
    runner: FileBankRunner,
    done: Callable[[], bool],
    rounds: int = 12,
) -> int:
    """Alternate gateway and bank rounds until ``done``; return rounds used."""
    for used in range(1, rounds + 1):
        delivery.run_once()
        runner.run_once()
        delivery.run_once()
        if done():
            return used
    raise AssertionError(f"the exchange did not finish in {rounds} rounds")


def core_payments(database: Path) -> list[tuple[str, int, int]]:
    """The bank core's own record: (instruction id, status, reported) per
    payment, read from its database as an auditor of the bank would."""
    connection = sqlite3.connect(database)
    try:
        return list(
            connection.execute(
                "SELECT instruction_id, status, result_reported FROM payments "
                "ORDER BY instruction_id"
            )
        )
    finally:
        connection.close()


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` with a generous bound; fail naming ``what``."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.1)


# -- fixtures ------------------------------------------------------------------


@pytest.fixture(params=STYLES, ids=[style.value for style in STYLES])
def style(request: pytest.FixtureRequest) -> Style:
    chosen: Style = request.param
    return chosen


@pytest.fixture
def files_gateway(tmp_path: Path, database_url: str, style: Style) -> Iterator[Running]:
    started = start_exchange_gateway(tmp_path, database_url, style.value)
    yield started
    started.gateway.stop(0)


@pytest.fixture
def bank(files_gateway: Running, tmp_path: Path) -> Bank:
    return bank_for(files_gateway, tmp_path)


def delivery_for(
    running: Running, tmp_path: Path, style: Style, *, keep_files: bool = False
) -> FileDelivery:
    return FileDelivery(
        running.gateway.core,
        BANK,
        style,
        exchange_root(tmp_path),
        keep_files=keep_files,
    )


def until_paid_out(running: Running) -> Callable[[], bool]:
    """Done once the batch closed; the last result file is then taken in."""
    return lambda: batch_state(running) == "CLOSED"


def to_results_file(
    running: Running, tmp_path: Path, style: Style, bank: Bank
) -> tuple[FileDelivery, Path]:
    """Run the exchange until the bank has written its result file and the
    gateway has not read it yet; return the delivery and the file."""
    delivery = delivery_for(running, tmp_path, style)
    runner = bank.file_runner(style)
    delivery.run_once()  # writes the account checks
    runner.run_once()  # answers and acknowledges them
    delivery.run_once()  # takes the answers in, writes the instructions
    runner.run_once()  # pays, acknowledges, writes the results
    written = [
        name
        for name in exchange_files.list_complete(bank.folders.from_bank)
        if name.endswith(style.result_suffix)
    ]
    assert len(written) == 1
    return delivery, bank.folders.from_bank / written[0]


# -- the happy path ------------------------------------------------------------


def test_a_batch_is_paid_through_files_and_the_folders_end_empty(
    files_gateway: Running, bank: Bank, tmp_path: Path, style: Style
) -> None:
    persons = files_gateway.persons[:15]
    submit_released(files_gateway, persons)
    delivery = delivery_for(files_gateway, tmp_path, style)

    drive(delivery, bank.file_runner(style), until_paid_out(files_gateway))

    assert outcomes(files_gateway) == [batch_pb2.OUTCOME_PAID] * 15
    assert set(record_states(files_gateway).values()) == {RecordState.PAID.value}
    assert result_count(files_gateway) == 15
    assert set(set_states(files_gateway, SetKind.INSTRUCTION).values()) == {
        SetState.DONE.value
    }
    folders = bank.folders
    assert entries(folders.to_bank) == []
    assert entries(folders.from_bank) == []
    assert entries(folders.refused) == []
    assert entries(folders.kept) == []
    assert dead_letters(files_gateway, "inbound-file") == 0


def test_kept_files_are_moved_out_of_the_banks_sight(
    files_gateway: Running, bank: Bank, tmp_path: Path, style: Style
) -> None:
    submit_released(files_gateway, files_gateway.persons[:5])
    delivery = delivery_for(files_gateway, tmp_path, style, keep_files=True)

    drive(delivery, bank.file_runner(style), until_paid_out(files_gateway))

    folders = bank.folders
    assert entries(folders.to_bank) == []
    assert entries(folders.from_bank) == []
    kept = entries(folders.kept)
    expected = {
        "b-1.c0.checks",
        "b-1.c0.answers",
        "b-1.c0.checks.ack",
        f"b-1.i0{style.instruction_suffix}",
        f"b-1.i0{style.instruction_suffix}.ack",
    }
    assert expected | {f"{name}.sig" for name in expected} <= set(kept)
    results = [name for name in kept if name.endswith(style.result_suffix)]
    assert len(results) == 1
    assert f"{results[0]}.sig" in kept
    assert outcomes(files_gateway) == [batch_pb2.OUTCOME_PAID] * 5


def test_the_gateways_own_delivery_thread_pays_a_batch(
    tmp_path: Path, database_url: str, style: Style
) -> None:
    running = start_exchange_gateway(
        tmp_path, database_url, style.value, file_thread=True, keep_files=True
    )
    try:
        bank = bank_for(running, tmp_path)
        submit_released(running, running.persons[:8])
        runner = bank.file_runner(style)

        def closed_after_a_bank_round() -> bool:
            runner.run_once()
            return batch_state(running) == "CLOSED"

        wait_until(closed_after_a_bank_round, "the batch to close")
        wait_until(
            lambda: not entries(bank.folders.from_bank),
            "the gateway to take in the last file",
        )

        assert outcomes(running) == [batch_pb2.OUTCOME_PAID] * 8
        assert entries(bank.folders.to_bank) == []
        assert entries(bank.folders.refused) == []
        kept = entries(bank.folders.kept)
        assert f"b-1.i0{style.instruction_suffix}" in kept
        assert any(name.endswith(style.result_suffix) for name in kept)
    finally:
        running.gateway.stop(0)


# -- files the gateway must refuse or ignore -----------------------------------


def assert_refused(folders: BankFolders, name: str, error: str) -> None:
    refused = entries(folders.refused)
    assert name in refused
    assert f"{name}.sig" in refused
    why = (folders.refused / f"{name}.why").read_text()
    assert why.startswith(f"{error}:")
    assert name not in entries(folders.from_bank)


def test_a_result_file_changed_after_signing_is_refused_and_changes_nothing(
    files_gateway: Running, bank: Bank, tmp_path: Path, style: Style
) -> None:
    submit_released(files_gateway, files_gateway.persons[:4])
    delivery, results = to_results_file(files_gateway, tmp_path, style, bank)
    data = bytearray(results.read_bytes())
    data[len(data) // 2] ^= 0x01
    results.write_bytes(bytes(data))

    delivery.run_once()

    assert_refused(bank.folders, results.name, "EnvelopeError")
    assert set(record_states(files_gateway).values()) == {RecordState.INSTRUCTED.value}
    assert result_count(files_gateway) == 0
    assert dead_letters(files_gateway, "inbound-file") == 1


def test_a_result_file_signed_by_another_bank_is_refused(
    files_gateway: Running, bank: Bank, tmp_path: Path, style: Style
) -> None:
    submit_released(files_gateway, files_gateway.persons[:4])
    delivery, results = to_results_file(files_gateway, tmp_path, style, bank)
    data = results.read_bytes()
    exchange_files.delete_acknowledged(results.parent, results.name)
    other = files_gateway.client(Role.BANK, OTHER_BANK).signer()
    exchange_files.write_signed(
        results.parent,
        results.name,
        data,
        signer=other,
        payload_type=style.result_type,
    )

    delivery.run_once()

    assert_refused(bank.folders, results.name, "UntrustedSignerError")
    assert set(record_states(files_gateway).values()) == {RecordState.INSTRUCTED.value}
    assert result_count(files_gateway) == 0


def test_a_half_written_temporary_file_is_not_read(
    files_gateway: Running, bank: Bank, tmp_path: Path, style: Style
) -> None:
    submit_released(files_gateway, files_gateway.persons[:4])
    delivery, results = to_results_file(files_gateway, tmp_path, style, bank)
    data = results.read_bytes()
    exchange_files.delete_acknowledged(results.parent, results.name)
    partial = results.parent / f".{results.name}{exchange_files.TEMP_SUFFIX}"
    partial.write_bytes(data[: len(data) // 2])

    delivery.run_once()
    delivery.run_once()

    assert entries(bank.folders.from_bank) == [partial.name]
    assert partial.read_bytes() == data[: len(data) // 2]
    assert entries(bank.folders.refused) == []
    assert set(record_states(files_gateway).values()) == {RecordState.INSTRUCTED.value}
    assert result_count(files_gateway) == 0


def test_an_acknowledgement_of_other_bytes_is_refused(
    files_gateway: Running, bank: Bank, tmp_path: Path, style: Style
) -> None:
    submit_released(files_gateway, files_gateway.persons[:4])
    delivery = delivery_for(files_gateway, tmp_path, style)
    runner = bank.file_runner(style)
    delivery.run_once()
    runner.run_once()
    delivery.run_once()  # the instruction file is now in to-bank
    name = f"b-1.i0{style.instruction_suffix}"
    assert (bank.folders.to_bank / name).exists()
    exchange_files.write_signed(
        bank.folders.from_bank,
        name + ACK,
        encode_ack(name, b"bytes the gateway never wrote"),
        signer=bank.credentials.signer(),
        payload_type=exchange_files.ACKNOWLEDGEMENT,
    )

    delivery.run_once()

    assert_refused(bank.folders, name + ACK, "ValueError")
    assert set_states(files_gateway, SetKind.INSTRUCTION) == {
        "b-1.i0": SetState.LEASED.value
    }
    assert (bank.folders.to_bank / name).exists()
    # The bank, seeing no acknowledgement of its own, pays and acknowledges
    # the file for real; the batch then closes as usual.
    drive(delivery, runner, until_paid_out(files_gateway))
    assert outcomes(files_gateway) == [batch_pb2.OUTCOME_PAID] * 4


# -- what the bank's format cannot carry ---------------------------------------


def test_a_payee_name_gbk_cannot_encode_makes_the_set_a_dead_letter(
    tmp_path: Path, database_url: str
) -> None:
    # U+20000 is a valid CJK name character (gateway.normalize.name_valid)
    # that GBK lacks; only the fixed-width style is bound to GBK.
    rng = random.Random(20000)
    persons = [
        Person("赵\U00020000", make_id(rng), make_card(rng)),
        *people(3, seed=11),
    ]
    running = start_exchange_gateway(
        tmp_path, database_url, Style.FIXED_WIDTH.value, persons=persons
    )
    try:
        bank = bank_for(running, tmp_path)
        submit_released(running, persons)
        delivery = delivery_for(running, tmp_path, Style.FIXED_WIDTH)
        runner = bank.file_runner(Style.FIXED_WIDTH)

        for _ in range(3):
            delivery.run_once()
            runner.run_once()

        assert set_states(running, SetKind.INSTRUCTION) == {
            "b-1.i0": SetState.DEAD.value
        }
        assert dead_letters(running, SetKind.INSTRUCTION.value) == 1
        assert not any(
            name.startswith("b-1.i0") for name in entries(bank.folders.to_bank)
        )
        assert set(record_states(running).values()) == {RecordState.INSTRUCTED.value}
        assert result_count(running) == 0
        assert core_payments(bank.core_database) == []
    finally:
        running.gateway.stop(0)
