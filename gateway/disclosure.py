"""The public notice (公示) of a batch's payments, as CSV or XLSX.

A department publishes who received how much under which policy (Chapter 5
of the measures). The notice is written from rows that hold the plaintext in
``gateway.masking`` types, and shows them only under the public audience's
rules.

Layout, the same in both formats: one header row of the columns 序号, 姓名,
身份证号码, 补贴金额（元）, 政策名称, 发放周期; one row per payment; then a
合计 row (number of people, total amount) and two footer rows, 公示单位 (the
department) and 咨询投诉渠道 (the contact for questions and complaints).

Invariants:
  * Names and ID numbers are written only as ``AudienceRules.mask`` gives them
    for the public audience; a notice cannot be written under any other
    audience's rules, and a row whose name or ID number is a plain ``str`` is
    refused. Account numbers are not part of a notice.
  * Amounts are integer fen in and exact yuan with two decimals out, as text
    in both formats (right-aligned in XLSX): openpyxl would write a number
    cell through a float. No float ever holds an amount.
    An amount of zero or less is refused: the notice lists payments.
  * Rows stream: CSV is written row by row, XLSX with openpyxl's write-only
    workbook, so a notice of a million rows needs no more memory than one.
  * A notice appears complete or not at all: it is written to a ``.partial``
    file next to the target and renamed over it at the end; a failure removes
    the partial file.
  * CSV is UTF-8 with a byte-order mark, so Excel opens it as UTF-8.

Threats:
  * Re-identification from the published list: see the public rules in
    ``gateway.masking``; the birth date in an ID number is never shown.
  * Formula injection: a text cell that starts with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return would run as a formula when the CSV is
    opened in a spreadsheet, so in CSV such a cell gets a leading ``'``. XLSX
    cells are written as explicit strings, never as formulas.
  * Refusals name rows by their 序号, never by their content.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment

from gateway.masking import (
    DEFAULT_POLICY,
    Audience,
    AudienceRules,
    IdNumber,
    PersonName,
)
from gateway.normalize import format_fen

COLUMNS = ("序号", "姓名", "身份证号码", "补贴金额（元）", "政策名称", "发放周期")
SHEET_TITLE = "公示"

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_RIGHT = Alignment(horizontal="right")


@dataclass(frozen=True)
class NoticeRow:
    """One payment: plaintext in masking types, the amount in fen."""

    name: PersonName
    id_number: IdNumber
    amount_fen: int


@dataclass(frozen=True)
class Notice:
    """What the notice is about and whom to ask."""

    department_name: str
    policy_name: str
    period: str
    contact: str

    def __post_init__(self) -> None:
        for field in ("department_name", "policy_name", "period", "contact"):
            if not getattr(self, field).strip():
                raise ValueError(f"a public notice needs a {field}")


@dataclass(frozen=True)
class _Line:
    """A masked payment row, ready to write."""

    index: int
    name: str
    id_number: str
    amount_fen: int


def write_csv(
    rows: Iterable[NoticeRow],
    path: Path,
    notice: Notice,
    rules: AudienceRules = DEFAULT_POLICY.public,
) -> int:
    """Write the notice as CSV (UTF-8 with BOM); return the number of rows."""
    _require_public(rules)

    def write(partial: Path) -> int:
        with partial.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            count = total = 0
            for line in _masked(rows, rules):
                writer.writerow(
                    [
                        str(line.index),
                        _csv_safe(line.name),
                        _csv_safe(line.id_number),
                        format_fen(line.amount_fen),
                        _csv_safe(notice.policy_name),
                        _csv_safe(notice.period),
                    ]
                )
                count, total = line.index, total + line.amount_fen

            writer.writerow(["合计", f"{count}人", "", format_fen(total), "", ""])
            for text in _contact_lines(notice):
                writer.writerow([_csv_safe(text)])
        return count

    return _atomically(path, write)


def write_xlsx(
    rows: Iterable[NoticeRow],
    path: Path,
    notice: Notice,
    rules: AudienceRules = DEFAULT_POLICY.public,
) -> int:
    """Write the notice as an XLSX workbook; return the number of rows."""
    _require_public(rules)

    def write(partial: Path) -> int:
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(SHEET_TITLE)
        sheet.append([_text_cell(sheet, column) for column in COLUMNS])

        count = total = 0
        try:
            for line in _masked(rows, rules):
                sheet.append(
                    [
                        line.index,
                        _text_cell(sheet, line.name),
                        _text_cell(sheet, line.id_number),
                        _amount_cell(sheet, line.amount_fen),
                        _text_cell(sheet, notice.policy_name),
                        _text_cell(sheet, notice.period),
                    ]
                )
                count, total = line.index, total + line.amount_fen
        except BaseException:
            # Finish the workbook so that openpyxl removes its temporary file;
            # the caller then deletes the partial notice.
            workbook.save(partial)
            raise

        sheet.append(
            [
                _text_cell(sheet, "合计"),
                _text_cell(sheet, f"{count}人"),
                None,
                _amount_cell(sheet, total),
            ]
        )
        for text in _contact_lines(notice):
            sheet.append([_text_cell(sheet, text)])

        workbook.save(partial)
        return count

    return _atomically(path, write)


def _masked(rows: Iterable[NoticeRow], rules: AudienceRules) -> Iterator[_Line]:
    for index, row in enumerate(rows, start=1):
        if not isinstance(row.name, PersonName):
            raise TypeError(f"row {index}: name must be a PersonName")
        if not isinstance(row.id_number, IdNumber):
            raise TypeError(f"row {index}: id_number must be an IdNumber")
        if not isinstance(row.amount_fen, int) or isinstance(row.amount_fen, bool):
            raise TypeError(f"row {index}: amount_fen must be a whole number of fen")
        if row.amount_fen <= 0:
            raise ValueError(f"row {index}: a notice lists payments above zero")

        yield _Line(
            index, rules.mask(row.name), rules.mask(row.id_number), row.amount_fen
        )


def _contact_lines(notice: Notice) -> tuple[str, str]:
    return (
        f"公示单位：{notice.department_name}",
        f"咨询投诉渠道：{notice.contact}",
    )


def _require_public(rules: AudienceRules) -> None:
    if rules.audience is not Audience.PUBLIC:
        raise ValueError("a public notice is written under the public rules only")


def _csv_safe(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _text_cell(sheet: Any, text: str) -> WriteOnlyCell:
    # Explicitly a string: openpyxl would store text starting with "=" as a
    # formula.
    cell = WriteOnlyCell(sheet, value=text)
    cell.data_type = "s"
    return cell


def _amount_cell(sheet: Any, fen: int) -> WriteOnlyCell:
    # Text, right-aligned: openpyxl writes every number cell through a float
    # ("%.16g"), even a Decimal, and no float may hold an amount.
    cell = _text_cell(sheet, format_fen(fen))
    cell.alignment = _RIGHT
    return cell


def _atomically(path: Path, write: Callable[[Path], int]) -> int:
    partial = path.with_name(path.name + ".partial")
    try:
        count = write(partial)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return count
