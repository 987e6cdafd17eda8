"""Public notices: written, read back with csv and openpyxl, and searched for
any plaintext name, ID number or birth date."""

from __future__ import annotations

import csv
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook

from gateway import disclosure
from gateway.disclosure import COLUMNS, Notice, NoticeRow
from gateway.masking import (
    DEFAULT_POLICY,
    Audience,
    AudienceRules,
    IdNumber,
    IdRule,
    PersonName,
)
from tests.fakes import Person, people

NOTICE = Notice(
    department_name="开州区农业农村委员会",
    policy_name="耕地地力保护补贴",
    period="2026",
    contact="023-00000000（工作日 9:00-17:00），开州区政务服务中心二楼",
)
PERSONS = people(25, seed=31)
# 0.01 yuan, 1 yuan, 120.50 yuan and a large one, so every formatting path runs.
AMOUNTS = [1, 100, 12050, 9_999_999_99] * 7


def rows(persons: list[Person] = PERSONS) -> Iterator[NoticeRow]:
    for person, fen in zip(persons, AMOUNTS, strict=False):
        yield NoticeRow(PersonName(person.name), IdNumber(person.id_number), fen)


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def masked_name(name: str) -> str:
    """张*三 for three characters, 李* for two (the names fakes.py makes)."""
    return name[0] + "*" if len(name) == 2 else name[0] + "*" + name[-1]


def masked_id(id_number: str) -> str:
    return id_number[:6] + "*" * 8 + id_number[-4:]


def plaintext_leaks(cells: list[str]) -> list[str]:
    """Every plaintext name, ID number, birth date or account found in cells."""
    found = []
    for person in PERSONS:
        for value in (
            person.name,
            person.id_number,
            person.id_number[6:14],
            person.account,
        ):
            found += [value for cell in cells if value in cell]
    return found


def csv_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def xlsx_rows(path: Path) -> list[list[object]]:
    workbook = load_workbook(path, read_only=True)
    try:
        sheet = workbook[disclosure.SHEET_TITLE]
        return [list(row) for row in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()


class TestCsv:
    def test_round_trip_shows_masked_values_only(self, tmp_path: Path) -> None:
        path = tmp_path / "notice.csv"
        count = disclosure.write_csv(rows(), path, NOTICE)
        table = csv_rows(path)

        assert count == len(PERSONS)
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")
        assert table[0] == list(COLUMNS)
        body = table[1 : 1 + count]
        for index, (line, person, fen) in enumerate(
            zip(body, PERSONS, AMOUNTS, strict=False), start=1
        ):
            assert line == [
                str(index),
                masked_name(person.name),
                masked_id(person.id_number),
                yuan(fen),
                NOTICE.policy_name,
                NOTICE.period,
            ]
        assert plaintext_leaks([cell for line in table for cell in line]) == []

    def test_footer_has_total_department_and_contact(self, tmp_path: Path) -> None:
        path = tmp_path / "notice.csv"
        disclosure.write_csv(rows(PERSONS[:3]), path, NOTICE)
        table = csv_rows(path)

        total = sum(AMOUNTS[:3])
        assert table[4] == ["合计", "3人", "", yuan(total), "", ""]
        assert table[5] == [f"公示单位：{NOTICE.department_name}"]
        assert table[6] == [f"咨询投诉渠道：{NOTICE.contact}"]
        assert len(table) == 7

    def test_a_cell_that_would_be_a_formula_is_defused(self, tmp_path: Path) -> None:
        path = tmp_path / "notice.csv"
        notice = Notice("部门", '=HYPERLINK("http://x")', "-2026", "+86 23 0000")
        disclosure.write_csv(rows(PERSONS[:1]), path, notice)
        table = csv_rows(path)

        assert table[1][4].startswith("'=")
        assert table[1][5] == "'-2026"
        assert table[-1] == ["咨询投诉渠道：+86 23 0000"]

    def test_an_empty_batch_still_has_header_and_footer(self, tmp_path: Path) -> None:
        path = tmp_path / "notice.csv"
        assert disclosure.write_csv(iter(()), path, NOTICE) == 0
        table = csv_rows(path)
        assert table[0] == list(COLUMNS)
        assert table[1] == ["合计", "0人", "", "0.00", "", ""]


class TestXlsx:
    def test_round_trip_shows_masked_values_only(self, tmp_path: Path) -> None:
        path = tmp_path / "notice.xlsx"
        count = disclosure.write_xlsx(rows(), path, NOTICE)
        table = xlsx_rows(path)

        assert count == len(PERSONS)
        assert table[0] == list(COLUMNS)
        for line, person, fen in zip(table[1:], PERSONS, AMOUNTS, strict=False):
            assert line[1:4] == [
                masked_name(person.name),
                masked_id(person.id_number),
                yuan(fen),
            ]
            assert line[4:] == [NOTICE.policy_name, NOTICE.period]
        assert [line[0] for line in table[1 : 1 + count]] == list(range(1, count + 1))
        assert table[-3] == ["合计", f"{count}人", None, yuan(sum(AMOUNTS[:count]))]
        assert table[-1] == [f"咨询投诉渠道：{NOTICE.contact}"]
        cells = [str(cell) for line in table for cell in line if cell is not None]
        assert plaintext_leaks(cells) == []

    def test_amounts_are_stored_as_exact_text(self, tmp_path: Path) -> None:
        path = tmp_path / "notice.xlsx"
        disclosure.write_xlsx(rows(PERSONS[:4]), path, NOTICE)

        sheet = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
        stored = re.findall(r'<c r="D\d+"[^>]*t="inlineStr"><is><t>([^<]*)</t>', sheet)
        assert stored[1:] == ["0.01", "1.00", "120.50", "9999999.99", "10000121.50"]

    def test_a_text_that_looks_like_a_formula_stays_text(self, tmp_path: Path) -> None:
        path = tmp_path / "notice.xlsx"
        notice = Notice("部门", "=1+1", "2026", "电话")
        disclosure.write_xlsx(rows(PERSONS[:1]), path, notice)

        sheet = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
        assert "<f>" not in sheet
        assert xlsx_rows(path)[1][4] == "=1+1"


class TestRefusals:
    @pytest.mark.parametrize("writer", [disclosure.write_csv, disclosure.write_xlsx])
    def test_a_plain_string_id_number_is_refused_and_nothing_is_left(
        self, tmp_path: Path, writer: Callable[..., int]
    ) -> None:
        path = tmp_path / "notice.out"
        person = PERSONS[0]
        # A plain str where an IdNumber belongs: the mistake under test.
        bad = NoticeRow(PersonName(person.name), person.id_number, 100)
        with pytest.raises(TypeError, match="row 2: id_number") as error:
            writer(iter([*rows(PERSONS[:1]), bad]), path, NOTICE)
        assert person.id_number not in str(error.value)
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize("fen", [0, -100, True])
    def test_a_non_payment_is_refused(self, tmp_path: Path, fen: int) -> None:
        person = PERSONS[0]
        row = NoticeRow(PersonName(person.name), IdNumber(person.id_number), fen)
        with pytest.raises((TypeError, ValueError), match="row 1"):
            disclosure.write_csv([row], tmp_path / "n.csv", NOTICE)

    def test_a_float_amount_is_refused(self, tmp_path: Path) -> None:
        person = PERSONS[0]
        amount = 1.5  # yuan as a float: the mistake under test
        row = NoticeRow(PersonName(person.name), IdNumber(person.id_number), amount)
        with pytest.raises(TypeError, match="whole number of fen"):
            disclosure.write_csv([row], tmp_path / "n.csv", NOTICE)

    def test_only_the_public_rules_may_write_a_notice(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="public rules only"):
            disclosure.write_csv(
                rows(), tmp_path / "n.csv", NOTICE, rules=DEFAULT_POLICY.bank
            )

    def test_a_notice_needs_a_contact(self) -> None:
        with pytest.raises(ValueError, match="contact"):
            Notice("部门", "政策", "2026", "  ")

    def test_an_existing_notice_survives_a_failed_rewrite(self, tmp_path: Path) -> None:
        path = tmp_path / "notice.csv"
        disclosure.write_csv(rows(PERSONS[:2]), path, NOTICE)
        before = path.read_bytes()
        person = PERSONS[0]
        bad = NoticeRow(PersonName(person.name), IdNumber(person.id_number), -1)
        with pytest.raises(ValueError, match="row 1"):
            disclosure.write_csv([bad], path, NOTICE)
        assert path.read_bytes() == before
        assert [p.name for p in tmp_path.iterdir()] == ["notice.csv"]


def test_a_stricter_public_rule_is_honoured(tmp_path: Path) -> None:
    stricter = AudienceRules(Audience.PUBLIC, id_number=IdRule(keep_last=1))
    path = tmp_path / "notice.csv"
    disclosure.write_csv(rows(PERSONS[:1]), path, NOTICE, rules=stricter)

    id_number = PERSONS[0].id_number
    assert csv_rows(path)[1][2] == id_number[:6] + "*" * 11 + id_number[-1]
