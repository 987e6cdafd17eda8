"""Reading department files that the tests write themselves.

Every person here is invented; ID numbers and card numbers are built with
python-stdnum's check-digit functions.
"""

from __future__ import annotations

import codecs
import re
import tracemalloc
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet
from stdnum import luhn
from stdnum.cn import ric

from gateway import files
from gateway.files import (
    FIELD_LABELS_ZH,
    HEADER_SYNONYMS,
    REQUIRED_FIELDS,
    DepartmentFile,
    Field,
    FileFormatError,
    SourceRow,
    normalize_header,
    read_department_file,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "department-files.md"


def make_id(order: int, born: str = "19620517") -> str:
    body = f"500154{born}{order:03d}"
    return body + ric.calc_check_digit(body + "0")


def make_card(serial: int) -> str:
    partial = f"621459{serial:012d}"
    return partial + luhn.calc_check_digit(partial)


HEADER = ["序号", "姓名", "身份证号码", "补贴金额（元）", "开户银行", "一卡通账号"]
PEOPLE = [
    ("张三", make_id(1), "654.50", "重庆农村商业银行", make_card(1)),
    ("李四", make_id(2), "1,234.00", "中国邮政储蓄银行", make_card(2)),
    ("阿依古丽·买买提", make_id(3), "90", "中国农业银行", make_card(3)),
]


def csv_text(rows: Sequence[Sequence[str]]) -> str:
    return "".join(
        ",".join(f'"{c}"' if "," in c else c for c in r) + "\r\n" for r in rows
    )


def standard_rows() -> list[list[str]]:
    return [HEADER] + [
        [str(i), *p[:2], p[2], p[3], p[4]] for i, p in enumerate(PEOPLE, 1)
    ]


def write_csv(
    path: Path, rows: Sequence[Sequence[str]], encoding: str = "utf-8"
) -> Path:
    path.write_bytes(csv_text(rows).encode(encoding))
    return path


def rows_of(department_file: DepartmentFile) -> list[SourceRow]:
    return list(department_file.iter_rows())


def expected_rows(first_file_row: int = 2) -> list[SourceRow]:
    return [
        SourceRow(
            row=i,
            name=name,
            id_number=id_number,
            account_number=account,
            amount=amount,
            bank_name=bank,
            proxy_name="",
            proxy_id_number="",
            file_row=first_file_row + i - 1,
        )
        for i, (name, id_number, amount, bank, account) in enumerate(PEOPLE, 1)
    ]


# --- CSV encodings ---------------------------------------------------------


@pytest.mark.parametrize(
    ("written_as", "detected"),
    [
        pytest.param("utf-8", "utf-8", id="utf-8"),
        pytest.param("utf-8-sig", "utf-8-sig", id="utf-8-bom"),
        pytest.param("gbk", "gb18030", id="gbk"),
        pytest.param("gb18030", "gb18030", id="gb18030"),
    ],
)
def test_csv_encodings(tmp_path: Path, written_as: str, detected: str) -> None:
    path = write_csv(tmp_path / "list.csv", standard_rows(), written_as)

    department_file = read_department_file(path)

    assert department_file.encoding == detected
    assert department_file.headers == tuple(HEADER)
    assert department_file.header_row == 1
    assert dict(department_file.columns) == {
        Field.NAME: 1,
        Field.ID_NUMBER: 2,
        Field.AMOUNT: 3,
        Field.BANK_NAME: 4,
        Field.ACCOUNT_NUMBER: 5,
    }
    assert rows_of(department_file) == expected_rows()
    assert department_file.declared_total_fen is None


def test_utf8_character_cut_at_the_probe_boundary_is_still_utf8(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = csv_text(standard_rows()).encode("utf-8")
    cut = text.index("张".encode()) + 1  # inside the three bytes of 张
    monkeypatch.setattr(files, "ENCODING_PROBE_BYTES", cut)
    path = tmp_path / "list.csv"
    path.write_bytes(text)
    assert read_department_file(path).encoding == "utf-8"


def test_encoding_change_part_way_refuses_the_file(tmp_path: Path) -> None:
    # More than the 1 MiB probe of UTF-8, then a GBK line.
    filler = [
        [str(i), "张三", make_id(1), "1.00", "银行", make_card(1)] for i in range(25000)
    ]
    head = csv_text([HEADER, *filler]).encode("utf-8")
    assert len(head) > files.ENCODING_PROBE_BYTES
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        head
        + csv_text([["x", "李四", make_id(2), "1.00", "银行", make_card(2)]]).encode(
            "gbk"
        )
    )

    department_file = read_department_file(path)
    assert department_file.encoding == "utf-8"
    with pytest.raises(FileFormatError, match="编码") as caught:
        rows_of(department_file)
    assert caught.value.row is not None
    assert "李四" not in str(caught.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64, "xls", id="legacy-xls"
        ),
        pytest.param(
            codecs.BOM_UTF16_LE + "姓名".encode("utf-16-le"), "UTF-16", id="utf-16"
        ),
        pytest.param(b"PK\x03\x04 not really a zip", "xlsx", id="damaged-xlsx"),
        pytest.param(b"", "表头", id="empty"),
    ],
)
def test_unreadable_files_are_refused(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "list.bin"
    path.write_bytes(content)
    with pytest.raises(FileFormatError, match=message):
        read_department_file(path)


# --- header ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("补贴金额（元）", "补贴金额", id="fullwidth-unit"),
        pytest.param("补贴金额(元)", "补贴金额", id="ascii-unit"),
        pytest.param(" 补贴 金额\u3000", "补贴金额", id="spaces"),
        pytest.param("\ufeff姓名", "姓名", id="bom"),
        pytest.param("补贴标准（元/亩）", "补贴标准(元/亩)", id="rate-keeps-its-unit"),
        pytest.param("(元)", "(元)", id="unit-alone"),
    ],
)
def test_normalize_header(header: str, expected: str) -> None:
    assert normalize_header(header) == expected


@pytest.mark.parametrize(
    ("header", "columns"),
    [
        pytest.param(
            ["户主姓名", "公民身份号码", "社保卡账号", "发放金额(元)"],
            {
                Field.NAME: 0,
                Field.ID_NUMBER: 1,
                Field.ACCOUNT_NUMBER: 2,
                Field.AMOUNT: 3,
            },
            id="other-synonyms",
        ),
        pytest.param(
            ["补贴对象姓名", "证件号码", "银行卡号", "补贴标准（元/亩）", "金额"],
            {
                Field.NAME: 0,
                Field.ID_NUMBER: 1,
                Field.ACCOUNT_NUMBER: 2,
                Field.AMOUNT: 4,
            },
            id="rate-per-mu-is-not-the-amount",
        ),
        pytest.param(
            [
                "姓 名",
                "身份证号",
                "账号",
                "月保障金额（元）",
                "开户行",
                "代领人姓名",
                "代领人身份证号",
            ],
            {
                Field.NAME: 0,
                Field.ID_NUMBER: 1,
                Field.ACCOUNT_NUMBER: 2,
                Field.AMOUNT: 3,
                Field.BANK_NAME: 4,
                Field.PROXY_NAME: 5,
                Field.PROXY_ID_NUMBER: 6,
            },
            id="spaced-and-proxy-columns",
        ),
    ],
)
def test_header_synonyms(
    tmp_path: Path, header: list[str], columns: dict[Field, int]
) -> None:
    path = write_csv(tmp_path / "list.csv", [header])
    assert dict(read_department_file(path).columns) == columns


def test_title_rows_above_the_header_are_skipped(tmp_path: Path) -> None:
    rows = [
        ["重庆市某区2026年某补贴发放清册"],
        ["填报单位：某镇", "", "单位：元"],
        [],
        *standard_rows(),
    ]
    department_file = read_department_file(write_csv(tmp_path / "list.csv", rows))
    assert department_file.header_row == 4
    assert rows_of(department_file) == expected_rows(first_file_row=5)


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        pytest.param(
            ["序号", "姓名", "补贴金额（元）", "一卡通账号"],
            ["身份证号码 (ID_NUMBER)"],
            id="no-id",
        ),
        pytest.param(
            ["姓名", "补贴标准（元/亩）", "开户银行"],
            [
                "身份证号码 (ID_NUMBER)",
                "银行账号 (ACCOUNT_NUMBER)",
                "补贴金额 (AMOUNT)",
            ],
            id="rate-only",
        ),
    ],
)
def test_missing_columns_refuse_the_file_naming_fields_and_headers(
    tmp_path: Path, header: list[str], missing: list[str]
) -> None:
    rows = [["标题"], header, ["1", "张三", make_id(1), "654.50", make_card(1)]]
    path = write_csv(tmp_path / "list.csv", rows)

    with pytest.raises(FileFormatError) as caught:
        read_department_file(path)

    message = str(caught.value)
    assert caught.value.row == 2
    for field_label in missing:
        assert field_label in message
    for cell in header:
        assert cell in message
    assert make_id(1) not in message
    assert "张三" not in message


def test_file_without_header_does_not_leak_its_records(tmp_path: Path) -> None:
    rows = [[str(i), *p[:2], p[2], p[3], p[4]] for i, p in enumerate(PEOPLE, 1)]
    path = write_csv(tmp_path / "list.csv", rows)

    with pytest.raises(FileFormatError) as caught:
        read_department_file(path)

    message = str(caught.value)
    assert "身份证号码 (ID_NUMBER)" in message
    for name, id_number, _, _, account in PEOPLE:
        assert name not in message
        assert id_number not in message
        assert account not in message


def test_header_below_the_scan_window_is_not_found(tmp_path: Path) -> None:
    rows = [[f"说明{i}"] for i in range(files.HEADER_SCAN_ROWS)] + standard_rows()
    with pytest.raises(FileFormatError, match="表头"):
        read_department_file(write_csv(tmp_path / "list.csv", rows))


def test_two_columns_for_one_field_refuse_the_file(tmp_path: Path) -> None:
    header = ["姓名", "身份证号码", "银行账号", "社保卡账号", "金额"]
    with pytest.raises(FileFormatError, match="ACCOUNT_NUMBER"):
        read_department_file(write_csv(tmp_path / "list.csv", [header]))


def test_synonym_table_can_be_extended(tmp_path: Path) -> None:
    synonyms = {
        **HEADER_SYNONYMS,
        Field.AMOUNT: (*HEADER_SYNONYMS[Field.AMOUNT], "应发金额"),
    }
    path = write_csv(
        tmp_path / "list.csv", [["姓名", "身份证号码", "银行账号", "应发金额（元）"]]
    )
    assert read_department_file(path, synonyms=synonyms).columns[Field.AMOUNT] == 3
    with pytest.raises(FileFormatError):
        read_department_file(path)


def test_synonym_listed_for_two_fields_is_a_programming_error(tmp_path: Path) -> None:
    synonyms = {**HEADER_SYNONYMS, Field.BANK_NAME: ("账号",)}
    path = write_csv(tmp_path / "list.csv", standard_rows())
    with pytest.raises(ValueError, match="two fields"):
        read_department_file(path, synonyms=synonyms)


# --- records, blank rows and the total row ---------------------------------


def test_blank_rows_are_skipped_and_records_numbered_densely(tmp_path: Path) -> None:
    rows = standard_rows()
    rows = [rows[0], ["", " ", ""], rows[1], [], rows[2], [" "], rows[3]]
    records = rows_of(read_department_file(write_csv(tmp_path / "list.csv", rows)))
    assert [(r.row, r.file_row) for r in records] == [(1, 3), (2, 5), (3, 7)]


def test_short_lines_and_broken_rows_are_still_records(tmp_path: Path) -> None:
    rows = [HEADER, ["1", "张三"], ["", "", "not an id", "八百元"]]
    records = rows_of(read_department_file(write_csv(tmp_path / "list.csv", rows)))
    assert [
        (r.row, r.name, r.id_number, r.amount, r.account_number) for r in records
    ] == [
        (1, "张三", "", "", ""),
        (2, "", "not an id", "八百元", ""),
    ]


def test_cells_are_stripped_but_otherwise_raw(tmp_path: Path) -> None:
    rows = [
        HEADER,
        ["1", " 张  三 ", f" {make_id(1)}\t", " ¥1,234.50 ", "银行", "6214 5900"],
    ]
    (record,) = rows_of(read_department_file(write_csv(tmp_path / "list.csv", rows)))
    assert (record.name, record.id_number, record.amount, record.account_number) == (
        "张  三",
        make_id(1),
        "¥1,234.50",
        "6214 5900",
    )


@pytest.mark.parametrize(
    ("total_row", "declared"),
    [
        pytest.param(["合计", "", "", "1,978.50"], 197850, id="heji"),
        pytest.param(["", "合 计", "", "1978.5"], 197850, id="spaced-in-second-cell"),
        pytest.param(["总计：", "", "", "1978.50"], 197850, id="zongji"),
        pytest.param(["合计", "", "", ""], None, id="no-amount"),
        pytest.param(["合计", "", "", "壹仟"], None, id="amount-not-a-number"),
    ],
)
def test_total_row_is_captured_not_a_record(
    tmp_path: Path, total_row: list[str], declared: int | None
) -> None:
    rows = [
        *standard_rows(),
        [],
        total_row,
        [],
        ["制表人：", "", "审核人：", "", "日期："],
    ]
    department_file = read_department_file(write_csv(tmp_path / "list.csv", rows))

    assert rows_of(department_file) == expected_rows()
    assert department_file.declared_total_fen == declared


def test_declared_total_before_streaming_costs_its_own_pass(tmp_path: Path) -> None:
    rows = [*standard_rows(), ["合计", "", "", "1,978.50"]]
    department_file = read_department_file(write_csv(tmp_path / "list.csv", rows))
    assert department_file.declared_total_fen == 197850
    assert rows_of(department_file) == expected_rows()


def test_data_after_the_total_row_refuses_the_file(tmp_path: Path) -> None:
    rows = standard_rows()
    rows = [
        *rows[:2],
        ["小计", "", "", "654.50"],
        ["合计", "", "", "654.50"],
        *rows[2:],
    ]
    department_file = read_department_file(write_csv(tmp_path / "list.csv", rows))

    with pytest.raises(FileFormatError, match="合计") as caught:
        rows_of(department_file)
    assert caught.value.row == 5
    assert PEOPLE[1][1] not in str(caught.value)


def test_rows_stream_without_holding_the_file(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join(HEADER) + "\r\n")
        for i in range(60000):
            out.write(f"{i},张三,{make_id(1)},100.00,银行,{make_card(i)}\r\n")
    assert path.stat().st_size > 4_000_000

    department_file = read_department_file(path)
    tracemalloc.start()
    try:
        count = sum(1 for _ in department_file.iter_rows())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert count == 60000
    assert peak < 1_000_000


# --- xlsx ------------------------------------------------------------------


def write_xlsx(
    path: Path, fill: Callable[[Worksheet], None], patches: dict[str, str] | None = None
) -> Path:
    """A workbook with one sheet. ``patches`` replace cell values in the sheet
    XML: openpyxl writes floats with 16 significant digits, where Excel
    writes 17 and so keeps a float artifact such as 0.30000000000000004."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert isinstance(sheet, Worksheet)
    sheet.title = "发放清册"
    fill(sheet)
    workbook.save(path)
    if patches:
        _patch_sheet(path, patches)
    return path


def _patch_sheet(path: Path, patches: dict[str, str]) -> None:
    with zipfile.ZipFile(path) as archive:
        parts = {info: archive.read(info) for info in archive.infolist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in parts.items():
            if info.filename == "xl/worksheets/sheet1.xml":
                for old, new in patches.items():
                    assert f"<v>{old}</v>".encode() in data
                    data = data.replace(
                        f"<v>{old}</v>".encode(), f"<v>{new}</v>".encode()
                    )
            archive.writestr(info, data)


def county_list(sheet: Worksheet) -> None:
    sheet.append(["重庆市某区2026年耕地地力保护补贴资金发放清册"])
    sheet.merge_cells("A1:J1")
    sheet.append(
        [*HEADER, "代领人姓名", "代领人身份证号码", "补贴标准（元/亩）", "备注"]
    )
    sheet.append(
        [
            1,
            "张三",
            make_id(1),
            654.5,
            "重庆农村商业银行",
            make_card(1),
            None,
            None,
            93.5,
        ]
    )
    sheet.append([2, "李四", make_id(2), 111.111, "中国邮政储蓄银行", make_card(2)])
    sheet.append([])  # a blank row between records
    sheet.append(
        [3, "王五", make_id(3), 935, "中国农业银行", make_card(3), "赵六", make_id(4)]
    )
    sheet.append(
        [4, "钱七", 500154196205170000, 100.0, "重庆银行", int(make_card(5)), "", ""]
    )
    sheet.append([5, "孙八", make_id(6), "120.00", "中国邮政储蓄银行", 12345678901])
    sheet.append(["合计", None, None, 222.222])


# Excel's own 17-digit text for two binary floats off their 2-decimal value.
ARTIFACTS = {"111.111": "0.30000000000000004", "222.222": "1809.8000000000002"}


def test_xlsx_with_title_row_total_row_and_numeric_cells(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "list.xlsx", county_list, ARTIFACTS)
    department_file = read_department_file(path)

    assert department_file.encoding == "xlsx"
    assert department_file.sheet == "发放清册"
    assert department_file.header_row == 2
    assert department_file.headers[:6] == tuple(HEADER)
    assert department_file.columns[Field.PROXY_ID_NUMBER] == 7
    assert Field.AMOUNT not in {
        fld for fld, col in department_file.columns.items() if col == 8
    }

    records = rows_of(department_file)
    got = [
        (
            r.row,
            r.file_row,
            r.name,
            r.id_number,
            r.amount,
            r.account_number,
            r.proxy_name,
        )
        for r in records
    ]
    assert got == [
        (1, 3, "张三", make_id(1), "654.5", make_card(1), ""),
        (2, 4, "李四", make_id(2), "0.30000000000000004", make_card(2), ""),
        (3, 6, "王五", make_id(3), "935", make_card(3), "赵六"),
        (4, 7, "钱七", "5.00154E+17", "100", "6.21459E+18", ""),
        (5, 8, "孙八", make_id(6), "120.00", "12345678901", ""),
    ]
    assert records[2].proxy_id_number == make_id(4)
    assert department_file.declared_total_fen == 180980


def test_xlsx_declared_total_before_streaming(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "list.xlsx", county_list, ARTIFACTS)
    department_file = read_department_file(path)
    assert department_file.declared_total_fen == 180980
    assert len(rows_of(department_file)) == 5


def test_xlsx_formula_total_without_cached_value_reads_as_none(tmp_path: Path) -> None:
    def fill(sheet: Worksheet) -> None:
        sheet.append(HEADER)
        sheet.append([1, "张三", make_id(1), 654.5, "银行", make_card(1)])
        sheet.append(["合计", None, None, "=SUM(D2:D2)"])

    department_file = read_department_file(write_xlsx(tmp_path / "list.xlsx", fill))
    assert len(rows_of(department_file)) == 1
    assert department_file.declared_total_fen is None


def test_xlsx_missing_column_is_refused(tmp_path: Path) -> None:
    def fill(sheet: Worksheet) -> None:
        sheet.append(["标题"])
        sheet.append(["序号", "姓名", "一卡通账号", "补贴金额（元）"])
        sheet.append([1, "张三", make_card(1), 654.5])

    with pytest.raises(
        FileFormatError, match=re.escape("身份证号码 (ID_NUMBER)")
    ) as caught:
        read_department_file(write_xlsx(tmp_path / "list.xlsx", fill))
    assert "一卡通账号" in str(caught.value)
    assert caught.value.row == 2


def test_xlsx_that_unpacks_too_large_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_xlsx(tmp_path / "list.xlsx", county_list)
    monkeypatch.setattr(files, "MAX_XLSX_UNPACKED_BYTES", 1000)
    with pytest.raises(FileFormatError, match="too large"):
        read_department_file(path)


def test_file_name_does_not_decide_the_format(tmp_path: Path) -> None:
    xlsx = write_xlsx(tmp_path / "list.csv", county_list)
    assert read_department_file(xlsx).encoding == "xlsx"
    csv_file = write_csv(tmp_path / "list.xlsx", standard_rows())
    assert read_department_file(csv_file).encoding == "utf-8"


# --- the table and its document --------------------------------------------


def test_synonym_table_invariants() -> None:
    assert set(HEADER_SYNONYMS) == set(Field) == set(FIELD_LABELS_ZH)
    assert set(REQUIRED_FIELDS) == {
        Field.NAME,
        Field.ID_NUMBER,
        Field.ACCOUNT_NUMBER,
        Field.AMOUNT,
    }
    names = [normalize_header(n) for ns in HEADER_SYNONYMS.values() for n in ns]
    assert len(names) == len(set(names))
    assert all(name == normalize_header(name) for name in names)
    assert normalize_header("补贴标准（元/亩）") not in names


def test_document_lists_the_same_synonyms() -> None:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"\| `(\w+)` \| (yes|no) \| (\S+) \| (.+) \|", line)
        if match:
            rows[Field(match[1])] = (
                match[2] == "yes",
                match[3],
                tuple(match[4].split(", ")),
            )
    assert rows == {
        fld: (fld in REQUIRED_FIELDS, FIELD_LABELS_ZH[fld], HEADER_SYNONYMS[fld])
        for fld in Field
    }
