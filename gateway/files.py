"""Read a department's disbursement list (发放清册) from an xlsx or CSV file.

Departments send lists the way their own systems and staff make them: a
merged title row above the header, Chinese headers that differ from one
department to the next, a 合计 (total) row at the bottom, GBK or UTF-8 text.
This module finds the header, maps its columns to ``Field``s through one
synonym table, and streams one ``SourceRow`` per record, as raw text. It does
not validate records: that is ``gateway.rules``, record by record.

Invariants:
  * A file is refused as a whole (``FileFormatError``) only when it cannot be
    read as a list at all: unknown format, no header row with the required
    columns, a column mapped twice, text that changes encoding part-way, or
    a record after the 合计 row. Any other row is a record, however broken,
    so that the department sees a verdict for it. Below the 合计 row only
    footer lines (制表人, 审核人, 日期) may follow; they are skipped, and a
    row there with an amount or a check-digit-valid ID number is a record
    and refuses the file.
  * ``SourceRow.row`` numbers records 1, 2, 3, ... below the header, skipping
    blank rows; ``SourceRow.file_row`` is the row number a spreadsheet program
    shows, so that staff can find the record.
  * Rows stream. A million-row CSV is never held in memory; xlsx is read with
    openpyxl's read-only mode.
  * A spreadsheet cell that holds a number keeps the look of a number:
    an amount as Python's ``repr`` of the float (so the float-artifact rule of
    ``gateway.normalize`` applies), an ID or account number as Excel's
    General format shows it (``5.00154E+17``). The digits such a cell has
    lost are never guessed back.

Threats:
  * Personal data in error messages: a ``FileFormatError`` names rows,
    fields and header cells only. Header cells are listed only from a row
    that contains a known header, so a file without a header row cannot leak
    its first record into the message.
  * Resource exhaustion: CSV fields are bounded by the csv module's field
    size limit, and an xlsx file whose parts would unpack to more than
    ``MAX_XLSX_UNPACKED_BYTES`` is refused before it is parsed. openpyxl
    parses worksheets with the standard library's expat, which resolves no
    external entities and limits entity expansion.
  * Silent mis-mapping: a header such as 补贴标准（元/亩） (a rate per mu) must
    never be taken for the amount; only exact synonyms map, after the header
    is normalised (NFKC, no spaces, no trailing (元)).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import enum
import math
import unicodedata
import zipfile
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import openpyxl

from gateway.normalize import id_check_char, normalize_id_number, parse_amount_fen


class Field(enum.StrEnum):
    """A column of a department file that the gateway reads."""

    NAME = "name"
    ID_NUMBER = "id_number"
    ACCOUNT_NUMBER = "account_number"
    AMOUNT = "amount"
    BANK_NAME = "bank_name"
    PROXY_NAME = "proxy_name"
    PROXY_ID_NUMBER = "proxy_id_number"


REQUIRED_FIELDS: tuple[Field, ...] = (
    Field.NAME,
    Field.ID_NUMBER,
    Field.ACCOUNT_NUMBER,
    Field.AMOUNT,
)

# How a field is named to department staff in a refusal.
FIELD_LABELS_ZH: Mapping[Field, str] = MappingProxyType(
    {
        Field.NAME: "姓名",
        Field.ID_NUMBER: "身份证号码",
        Field.ACCOUNT_NUMBER: "银行账号",
        Field.AMOUNT: "补贴金额",
        Field.BANK_NAME: "开户银行",
        Field.PROXY_NAME: "代领人姓名",
        Field.PROXY_ID_NUMBER: "代领人身份证号码",
    }
)

# The one table of header names. Entries are in normalised form (see
# ``normalize_header``): a header with a trailing (元) or （元） matches the
# entry without it. Extend it here when a department uses a new name.
HEADER_SYNONYMS: Mapping[Field, tuple[str, ...]] = MappingProxyType(
    {
        Field.NAME: ("姓名", "户主姓名", "补贴对象姓名"),
        Field.ID_NUMBER: ("身份证号", "身份证号码", "公民身份号码", "证件号码"),
        Field.ACCOUNT_NUMBER: (
            "银行账号",
            "银行卡号",
            "一卡通账号",
            "账号",
            "社保卡账号",
        ),
        Field.AMOUNT: (
            "补贴金额",
            "发放金额",
            "金额",
            "补助金额",
            "月保障金额",
            "补贴资金",
        ),
        Field.BANK_NAME: ("开户银行", "开户行", "开户银行名称"),
        Field.PROXY_NAME: ("代领人姓名",),
        Field.PROXY_ID_NUMBER: ("代领人身份证号码", "代领人身份证号"),
    }
)

# Rows searched for the header; rows above the header are title rows.
HEADER_SCAN_ROWS = 10
# Bytes of a CSV file decoded to choose its encoding.
ENCODING_PROBE_BYTES = 1 << 20
# Refuse an xlsx file whose parts would unpack to more than this.
MAX_XLSX_UNPACKED_BYTES = 1 << 30

_TOTAL_MARKERS = ("合计", "总计")
_UNIT_SUFFIX = "(元)"
_XLSX_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_XLSX = "xlsx"
# Excel's General format shows at most 11 characters of a number.
_GENERAL_DIGITS = 11
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_LISTED_HEADER_CHARS = 20


class FileFormatError(Exception):
    """The file cannot be read as a disbursement list; it is refused whole.

    ``row`` is the spreadsheet row the problem was found at, when there is
    one. The message names rows, fields and header cells, never a record's
    content.
    """

    def __init__(self, message: str, *, row: int | None = None) -> None:
        super().__init__(
            message if row is None else f"第{row}行 (row {row}): {message}"
        )
        self.row = row


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One record of a department file, as raw text.

    ``row`` is the record's number below the header (the first record is 1);
    ``file_row`` is the row number a spreadsheet program shows for it.
    Cells are stripped of surrounding whitespace and otherwise as found; a
    column the file does not have reads as "".
    """

    row: int
    name: str
    id_number: str
    account_number: str
    amount: str
    bank_name: str
    proxy_name: str
    proxy_id_number: str
    file_row: int = 0


class _TotalScan:
    """Mutable memo of the 合计 row, filled by the first complete row stream."""

    __slots__ = ("done", "total_fen")

    def __init__(self) -> None:
        self.done = False
        self.total_fen: int | None = None


@dataclass(frozen=True)
class DepartmentFile:
    """A department file whose header has been found; its rows stream.

    ``columns`` maps each field the file has to its 0-based column index.
    ``header_row`` is the spreadsheet row number of the header.
    """

    path: Path
    encoding: str
    headers: tuple[str, ...]
    header_row: int
    columns: Mapping[Field, int]
    sheet: str | None = None
    _totals: _TotalScan = field(
        default_factory=_TotalScan, repr=False, compare=False, hash=False
    )

    def iter_rows(self) -> Iterator[SourceRow]:
        """Stream the records in file order.

        Raises ``FileFormatError`` part-way if the file turns out not to be
        a list after all (see the module docstring); the caller must then
        refuse the whole file, including the records already read.
        """
        return _records(self)

    def __iter__(self) -> Iterator[SourceRow]:
        return self.iter_rows()

    @property
    def declared_total_fen(self) -> int | None:
        """The amount in the 合计/总计 row at the bottom, in fen, if any.

        The first complete pass of ``iter_rows`` records it. Reading it before
        that costs a pass of its own over the file.
        """
        if not self._totals.done:
            for _ in self.iter_rows():
                pass
        return self._totals.total_fen


def normalize_header(text: str) -> str:
    """A header cell as the synonym table spells it: NFKC, no whitespace,
    no trailing (元)."""
    header = "".join(unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH).split())
    if header.endswith(_UNIT_SUFFIX) and len(header) > len(_UNIT_SUFFIX):
        header = header[: -len(_UNIT_SUFFIX)]
    return header


def read_department_file(
    path: Path, *, synonyms: Mapping[Field, tuple[str, ...]] = HEADER_SYNONYMS
) -> DepartmentFile:
    """Open a department file: choose its format and encoding and find its
    header. Raises ``FileFormatError`` if it cannot be read as a list."""
    # 1. Format and encoding, from the bytes rather than the file name.
    encoding, sheet = _sniff(path)

    # 2. The header: the first of the top rows that has every required field.
    index = _synonym_index(synonyms)
    head: list[tuple[int, list[str]]] = []
    with contextlib.closing(_open_cells(path, encoding, sheet)) as top:
        for file_row, cells in top:
            head.append((file_row, cells))
            if len(head) == HEADER_SCAN_ROWS:
                break
    header_row, headers, columns = _find_header(head, index)

    return DepartmentFile(
        path=path,
        encoding=encoding,
        headers=headers,
        header_row=header_row,
        columns=MappingProxyType(columns),
        sheet=sheet,
    )


# --- format and encoding -----------------------------------------------------


def _sniff(path: Path) -> tuple[str, str | None]:
    with path.open("rb") as fh:
        probe = fh.read(ENCODING_PROBE_BYTES)

    if probe.startswith(_XLSX_MAGIC):
        return _XLSX, _xlsx_sheet(path)
    if probe.startswith(_OLE2_MAGIC):
        raise FileFormatError(
            "不支持旧版 .xls 文件，请另存为 .xlsx 或 CSV (legacy .xls)"
        )
    if probe.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", None
    if probe.startswith(_UTF16_BOMS):
        raise FileFormatError(
            "不支持 UTF-16 编码，请另存为 UTF-8 或 GBK 的 CSV (UTF-16)"
        )

    # Strict UTF-8 over the probe; a multi-byte character cut at its end is
    # not an error. Anything else is GB 18030, the superset of GBK.
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    try:
        decoder.decode(probe, final=len(probe) < ENCODING_PROBE_BYTES)
    except UnicodeDecodeError:
        return "gb18030", None
    return "utf-8", None


def _xlsx_sheet(path: Path) -> str:
    # Check the unpacked size before openpyxl inflates anything.
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError) as exc:
        raise FileFormatError("xlsx 文件已损坏 (damaged xlsx)") from exc
    if unpacked > MAX_XLSX_UNPACKED_BYTES:
        raise FileFormatError("xlsx 文件解压后过大 (xlsx unpacks too large)")

    with _workbook(path) as workbook:
        sheet = workbook.active
        if sheet is None:
            raise FileFormatError("xlsx 文件没有工作表 (xlsx has no sheet)")
        title: str = sheet.title
    return title


@contextlib.contextmanager
def _workbook(path: Path) -> Iterator[Any]:
    # openpyxl gets an open file, not a path, so that it does not judge the
    # file by its name. data_only: a 合计 cell holding =SUM(...) reads as its
    # cached value.
    with path.open("rb") as fh:
        try:
            workbook = openpyxl.load_workbook(
                fh, read_only=True, data_only=True, keep_links=False
            )
        except Exception as exc:  # openpyxl raises many kinds for a broken file
            raise FileFormatError("无法读取 xlsx 文件 (unreadable xlsx)") from exc
        try:
            yield workbook
        finally:
            workbook.close()


# --- cells ---------------------------------------------------------------------


def _open_cells(
    path: Path, encoding: str, sheet: str | None
) -> Generator[tuple[int, list[str]], None, None]:
    """(spreadsheet row number, stripped cells) for every row, blank or not."""
    if encoding == _XLSX:
        assert sheet is not None
        return _xlsx_cells(path, sheet)
    return _csv_cells(path, encoding)


def _csv_cells(
    path: Path, encoding: str
) -> Generator[tuple[int, list[str]], None, None]:
    with path.open(encoding=encoding, errors="strict", newline="") as fh:
        reader = csv.reader(fh)
        file_row = 0
        try:
            for cells in reader:
                file_row += 1
                yield file_row, [cell.strip() for cell in cells]
        except UnicodeDecodeError as exc:
            raise FileFormatError(
                "文件中途出现与开头不同的文字编码，请整体另存为 UTF-8 或 GBK"
                " (encoding changes part-way)",
                row=file_row + 1,
            ) from exc
        except csv.Error as exc:
            raise FileFormatError(
                "CSV 格式错误 (malformed CSV)", row=file_row + 1
            ) from exc


def _xlsx_cells(path: Path, sheet: str) -> Generator[tuple[int, list[str]], None, None]:
    with _workbook(path) as workbook:
        rows = _readable(workbook[sheet].iter_rows(values_only=True), 1)
        for file_row, values in enumerate(rows, 1):
            yield file_row, [_cell_text(value) for value in values]


def _readable(rows: Iterator[Any], first_row: int) -> Iterator[Any]:
    """openpyxl parses a sheet's XML row by row, as it is read: a sheet broken
    half-way raises there, in many kinds. Any of them refuses the file at
    the row it was reached."""
    row = first_row
    while True:
        try:
            values = next(rows)
        except StopIteration:
            return
        except FileFormatError:
            raise
        except Exception as exc:  # openpyxl and the XML parser raise many kinds
            raise FileFormatError(
                "无法读取 xlsx 文件 (unreadable xlsx)", row=row
            ) from exc
        yield values
        row += 1


def _cell_text(value: object) -> str:
    """A cell that is not an amount, as text; numbers as Excel shows them."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return _excel_general(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value).strip()


def _excel_general(number: float) -> str:
    # Excel's General format: whole numbers up to 11 digits in full, larger
    # ones in scientific notation with up to six significant digits.
    if not math.isfinite(number):
        return str(number)
    if abs(number) >= 10**_GENERAL_DIGITS:
        mantissa, exponent = f"{number:.5E}".split("E")
        return f"{mantissa.rstrip('0').rstrip('.')}E{exponent}"
    if isinstance(number, int) or number.is_integer():
        return str(int(number))
    return repr(number)


def _amount_text(value: object) -> str:
    # An amount cell: a float keeps its repr (84.15000000000001), so that the
    # amount grammar, not this reader, decides what it is.
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _cell_text(value)


# --- header --------------------------------------------------------------------


def _synonym_index(synonyms: Mapping[Field, tuple[str, ...]]) -> dict[str, Field]:
    index: dict[str, Field] = {}
    for fld, names in synonyms.items():
        for name in names:
            key = normalize_header(name)
            if index.setdefault(key, fld) is not fld:
                msg = f"header synonym {key!r} is listed for two fields"
                raise ValueError(msg)
    return index


def _find_header(
    head: Sequence[tuple[int, list[str]]], index: Mapping[str, Field]
) -> tuple[int, tuple[str, ...], dict[Field, int]]:
    best: tuple[int, list[str], dict[Field, int]] | None = None
    for file_row, cells in head:
        columns: dict[Field, int] = {}
        for column, cell in enumerate(cells):
            fld = index.get(normalize_header(cell))
            if fld is None:
                continue
            if fld in columns:
                raise FileFormatError(
                    f"表头中有两列都是{FIELD_LABELS_ZH[fld]} ({fld.name})，"
                    "请删除或改名其中一列 (column mapped twice)",
                    row=file_row,
                )
            columns[fld] = column
        if all(fld in columns for fld in REQUIRED_FIELDS):
            return file_row, tuple(cells), columns
        if columns and (best is None or len(columns) > len(best[2])):
            best = (file_row, cells, columns)

    # 3. No header: name what is missing, and what was found if it was a header.
    if best is None:
        raise FileFormatError(
            f"前{HEADER_SCAN_ROWS}行中找不到表头，缺少必需的列："
            + _field_list(REQUIRED_FIELDS)
            + f" (no header row in the first {HEADER_SCAN_ROWS} rows)"
        )
    file_row, cells, columns = best
    missing = [fld for fld in REQUIRED_FIELDS if fld not in columns]
    found = " | ".join(cell[:_LISTED_HEADER_CHARS] for cell in cells if cell)
    raise FileFormatError(
        "缺少必需的列 (missing required columns): "
        + _field_list(missing)
        + f"；找到的表头 (headers found): {found}",
        row=file_row,
    )


def _field_list(fields: Iterable[Field]) -> str:
    return "、".join(f"{FIELD_LABELS_ZH[fld]} ({fld.name})" for fld in fields)


# --- records -------------------------------------------------------------------

_PICKED = (
    Field.NAME,
    Field.ID_NUMBER,
    Field.ACCOUNT_NUMBER,
    Field.AMOUNT,
    Field.BANK_NAME,
    Field.PROXY_NAME,
    Field.PROXY_ID_NUMBER,
)


def _records(source: DepartmentFile) -> Iterator[SourceRow]:
    cols = source.columns
    picks = tuple(cols.get(fld, -1) for fld in _PICKED)
    amount_col = cols[Field.AMOUNT]
    id_col = cols[Field.ID_NUMBER]

    record = 0
    total_row: int | None = None
    total_fen: int | None = None
    for file_row, texts, amount in _rows_below_header(source, amount_col):
        if not any(texts):
            continue

        # After the 合计 row only footer lines (制表人, 审核人, 日期) may follow;
        # a row that looks like a record means the total was not the bottom.
        if total_row is not None:
            if _looks_like_record(_at(texts, id_col), amount):
                raise FileFormatError(
                    f"第{total_row}行是合计行，但其后仍有数据；"
                    "请把合计行放在最后或删除 (data after the total row)",
                    row=file_row,
                )
            continue
        if _is_total(texts):
            total_row, total_fen = file_row, parse_amount_fen(amount)
            continue

        record += 1
        name, id_number, account, _, bank, proxy, proxy_id = (
            _at(texts, col) for col in picks
        )
        yield SourceRow(
            row=record,
            name=name,
            id_number=id_number,
            account_number=account,
            amount=amount,
            bank_name=bank,
            proxy_name=proxy,
            proxy_id_number=proxy_id,
            file_row=file_row,
        )

    source._totals.total_fen = total_fen
    source._totals.done = True


def _rows_below_header(
    source: DepartmentFile, amount_col: int
) -> Iterator[tuple[int, list[str], str]]:
    """(spreadsheet row, cell texts, amount text) for each row below the
    header. An xlsx amount cell is rendered as an amount, not as General."""
    if source.encoding != _XLSX:
        for file_row, texts in _csv_cells(source.path, source.encoding):
            if file_row > source.header_row:
                yield file_row, texts, _at(texts, amount_col)
        return

    assert source.sheet is not None
    with _workbook(source.path) as workbook:
        rows = _readable(
            workbook[source.sheet].iter_rows(
                min_row=source.header_row + 1, values_only=True
            ),
            source.header_row + 1,
        )
        for file_row, values in enumerate(rows, source.header_row + 1):
            texts = [_cell_text(value) for value in values]
            amount = (
                _amount_text(values[amount_col]) if amount_col < len(values) else ""
            )
            yield file_row, texts, amount


def _at(cells: Sequence[str], column: int) -> str:
    return cells[column] if 0 <= column < len(cells) else ""


def _looks_like_record(id_text: str, amount: str) -> bool:
    # An amount, or an ID number with a correct check character: footer text
    # is neither, while a record almost always has both.
    if parse_amount_fen(amount) is not None:
        return True
    number = normalize_id_number(id_text)
    return (
        len(number) == 18
        and number[:17].isascii()
        and number[:17].isdigit()
        and id_check_char(number[:17]) == number[17]
    )


def _is_total(texts: Sequence[str]) -> bool:
    first = next(text for text in texts if text)
    return "".join(first.split()).startswith(_TOTAL_MARKERS)
