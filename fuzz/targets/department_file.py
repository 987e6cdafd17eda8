"""Fuzz target: the department file reader (``gateway.files``).

Input layout, by the first byte:
  * even: the rest of the bytes are the whole file, as a department uploads
    it. The reader sniffs the format from the bytes, so this reaches CSV in
    UTF-8 (with or without BOM) and GB 18030, legacy .xls and UTF-16
    refusals, and xlsx (a zip) alike;
  * odd: the rest is the worksheet XML of an otherwise valid xlsx file
    (``xl/worksheets/sheet1.xml``). Random bytes rarely form a zip with
    valid checksums, so this mode is how the fuzzer reaches openpyxl's
    row parsing.

The documented error is ``FileFormatError``; the target opens the file,
streams every row and reads the declared total, as the submission path does.
"""

from __future__ import annotations

import io
import zipfile

import openpyxl

from fuzz.targets._harness import fuzz_main, scratch_dir
from gateway.files import FileFormatError, SourceRow, read_department_file

EXPECTED: tuple[type[BaseException], ...] = (FileFormatError,)

SHEET_PART = "xl/worksheets/sheet1.xml"

_template: dict[str, bytes] = {}


def xlsx_parts() -> dict[str, bytes]:
    """The parts of a small, valid, fictional xlsx list, made once."""
    if not _template:
        workbook = openpyxl.Workbook()
        sheet = workbook.active
        sheet.append(["2026年耕地地力保护补贴发放清册"])
        sheet.append(["序号", "姓名", "身份证号码", "一卡通账号", "补贴金额（元）"])
        sheet.append([1, "测试甲", "500154199001010011", "6214590000000000001", 84.15])
        sheet.append(["合计", None, None, None, 84.15])
        out = io.BytesIO()
        workbook.save(out)
        with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
            for name in archive.namelist():
                _template[name] = archive.read(name)
    return _template


def xlsx_with_sheet(sheet_xml: bytes) -> bytes:
    """The template xlsx with its worksheet replaced; checksums are valid."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in xlsx_parts().items():
            archive.writestr(name, sheet_xml if name == SHEET_PART else content)
    return out.getvalue()


def parse(data: bytes) -> tuple[list[SourceRow], int | None]:
    if not data:
        raise FileFormatError("empty fuzz input")
    mode, rest = data[0], data[1:]

    content = xlsx_with_sheet(rest) if mode % 2 else rest
    path = scratch_dir() / ("list.xlsx" if mode % 2 else "list.csv")
    path.write_bytes(content)

    department_file = read_department_file(path)
    rows = list(department_file.iter_rows())
    return rows, department_file.declared_total_fen


def test_one_input(data: bytes) -> None:
    try:
        parse(data)
    except EXPECTED:
        return


def main() -> None:
    fuzz_main(test_one_input)


if __name__ == "__main__":
    main()
