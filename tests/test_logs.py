"""The log formatter and its personal-data guard, alone and behind a real
gateway that pays a batch end to end."""

from __future__ import annotations

import datetime as dt
import io
import logging
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from connectors.grpc_pull import GrpcPullRunner
from connectors.simulator import SimulatedBankCore, load_ledgers
from gateway import logs
from gateway.client import submit
from gateway.masking import AccountNumber, IdNumber, PersonName
from keys.identity import Role
from keys.trust import TrustStore
from tests.conftest import Running
from tests.fakes import id_check_char, luhn_complete, make_card, make_id
from tests.test_submission import DEPARTMENT, records_for, requests_for

RNG = random.Random(23)
ID = make_id(RNG)
CARD = make_card(RNG)
FULLWIDTH = str.maketrans({str(i): chr(0xFF10 + i) for i in range(10)})


def id_ending_in_x() -> str:
    rng = random.Random(5)
    while True:
        body = f"500154{rng.randint(1940, 2004)}0101{rng.randint(0, 999):03d}"
        if id_check_char(body) == "X":
            return body + "X"


def wrong_check(number: str) -> str:
    """The same number with a last digit its check does not accept."""
    last = "0" if number[-1] not in "0X" else "1"
    return number[:-1] + last


class Captured:
    """A logger whose records go through FieldFormatter into a string."""

    def __init__(self, name: str) -> None:
        self.stream = io.StringIO()
        handler = logging.StreamHandler(self.stream)
        handler.setFormatter(logs.FieldFormatter())
        self.logger = logging.getLogger(name)
        self.logger.handlers[:] = [handler]
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)

    @property
    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def captured() -> Iterator[Captured]:
    capture = Captured(f"test.logs.{uuid.uuid4().hex}")
    yield capture
    capture.logger.handlers.clear()


REGISTRY = CollectorRegistry()
REGISTRY.register(logs.RefusedRecordsCollector())


def refused_metric() -> float:
    value = REGISTRY.get_sample_value("ykt_log_records_refused_total")
    assert value is not None
    return value


class TestFormat:
    def test_message_and_fields_on_one_line(self, captured: Captured) -> None:
        captured.logger.info("set leased", extra={"set_id": "s-1", "bank": "CQRCB"})
        line = captured.text.strip()
        assert line.endswith('set leased {"bank": "CQRCB", "set_id": "s-1"}')
        assert f" INFO {captured.logger.name}: " in line

    def test_masked_values_pass_and_show_masked(self, captured: Captured) -> None:
        before = logs.refused_records()
        captured.logger.info(
            "record %s for %s",
            IdNumber(ID),
            PersonName("张小三"),
            extra={"account": AccountNumber(CARD)},
        )
        assert logs.refused_records() == before
        assert ID not in captured.text
        assert CARD not in captured.text
        assert f"record {ID[:6]}********{ID[-4:]} for 张*三" in captured.text
        assert f'"account": "{"*" * (len(CARD) - 4)}{CARD[-4:]}"' in captured.text

    def test_configure_writes_guarded_lines_to_a_file(self, tmp_path: Path) -> None:
        root = logging.getLogger()
        saved = root.handlers[:], root.level
        try:
            logs.configure(file=tmp_path / "logs" / "gateway.log")
            logging.getLogger("test.logs.file").info("plain event")
            logging.getLogger("test.logs.file").info("leak %s", ID)
            for handler in root.handlers:
                handler.flush()
        finally:
            root.handlers[:], level = saved
            root.setLevel(level)
        text = (tmp_path / "logs" / "gateway.log").read_text(encoding="utf-8")
        assert "plain event" in text
        assert logs.REFUSAL in text
        assert ID not in text


class TestGuard:
    @pytest.mark.parametrize(
        "leak",
        [
            ID,
            CARD,
            id_ending_in_x(),
            id_ending_in_x().lower(),
            ID.translate(FULLWIDTH),
            luhn_complete("621459" + "000000000"),  # 16 digits
        ],
    )
    def test_a_message_argument_is_refused(self, captured: Captured, leak: str) -> None:
        before, metric = logs.refused_records(), refused_metric()
        captured.logger.warning("checking %s now", leak)
        assert logs.REFUSAL in captured.text
        assert leak not in captured.text
        assert "checking" not in captured.text
        assert logs.refused_records() == before + 1
        assert refused_metric() == metric + 1

    def test_a_logger_named_after_a_person_is_not_named(self) -> None:
        capture = Captured(f"test.logs.person.{ID}")
        capture.logger.info("event")
        capture.logger.handlers.clear()
        assert "[logger name withheld]" in capture.text
        assert ID not in capture.text

    def test_the_refusal_names_logger_and_source(self, captured: Captured) -> None:
        captured.logger.error("id=%s", ID)
        line = captured.text.strip()
        assert f"ERROR {captured.logger.name}: {logs.REFUSAL}" in line
        assert '"source": "test_logs:' in line

    def test_an_extra_field_is_refused(self, captured: Captured) -> None:
        captured.logger.info("account checked", extra={"account": CARD})
        assert logs.REFUSAL in captured.text
        assert CARD not in captured.text

    def test_an_exception_message_is_refused_with_its_traceback(
        self, captured: Captured
    ) -> None:
        try:
            raise ValueError(f"no such person {ID}")
        except ValueError:
            captured.logger.exception("lookup failed")
        assert logs.REFUSAL in captured.text
        assert ID not in captured.text
        assert "Traceback" not in captured.text

    @pytest.mark.parametrize(
        "harmless",
        [
            wrong_check(ID),
            wrong_check(CARD),
            "1" * 20,  # too long for either
            ID[:15],  # too short
            "2026-06-01T12:00:00 batch b-1 records=1000000 total_fen=123456789012",
        ],
    )
    def test_numbers_that_fail_their_check_pass(
        self, captured: Captured, harmless: str
    ) -> None:
        before = logs.refused_records()
        captured.logger.info("value %s", harmless)
        assert logs.refused_records() == before
        assert harmless in captured.text


@given(
    st.text(st.characters(codec="ascii", exclude_characters="0123456789")),
    st.text(st.characters(codec="ascii", exclude_characters="0123456789")),
    st.integers(0, 2**32),
)
def test_an_id_or_card_anywhere_in_a_line_is_recognised(
    before: str, after: str, seed: int
) -> None:
    rng = random.Random(seed)
    assert logs.carries_personal_data(f"{before}{make_id(rng)}{after}")
    assert logs.carries_personal_data(f"{before}{make_card(rng)}{after}")


# --- Behind a real gateway ---------------------------------------------------


class RecordList(logging.Handler):
    """Keeps each record's rendered message and fields, unguarded."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(f"{record.getMessage()} {vars(record)}")


@pytest.fixture
def gateway_log(tmp_path: Path) -> Iterator[tuple[Path, RecordList]]:
    """The gateway's log file, and every raw record; set up before `running`."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    path = tmp_path / "gateway.log"
    logs.configure(logging.DEBUG, file=path)
    raw = RecordList()
    root.addHandler(raw)
    yield path, raw
    for handler in root.handlers:
        handler.flush()
    root.handlers[:], level = saved
    root.setLevel(level)


def test_paying_a_batch_logs_no_personal_data(
    gateway_log: tuple[Path, RecordList], running: Running, tmp_path: Path
) -> None:
    path, raw = gateway_log
    persons = running.persons[:6]
    department = running.client(Role.DEPARTMENT, DEPARTMENT)
    with running.channel(department) as channel:
        submit(channel, requests_for(department, records_for(persons)))

    bank = running.client(Role.BANK, "CQRCB")
    core = SimulatedBankCore(
        "CQRCB", load_ledgers(running.reference / "banks"), tmp_path / "core.db"
    )
    trust = TrustStore(
        running.ca.ca_path, [running.ca.crl_path], clock=lambda: dt.datetime.now(dt.UTC)
    )
    with running.channel(bank) as channel:
        runner = GrpcPullRunner(channel, core, bank.signer(), trust)
        for _ in range(10):
            if not runner.run_once():
                break
    for handler in logging.getLogger().handlers:
        handler.flush()

    written = path.read_text(encoding="utf-8")
    assert "set leased" in written
    for person in persons:
        for value in (person.id_number, person.account, person.name):
            assert value not in written
            assert not any(value in text for text in raw.texts)
