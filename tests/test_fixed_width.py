"""GBK fixed-width instruction and result files: layout, round trips, refusals."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors import fixed_width as fw
from tests.fakes import people
from ykt.v1 import exchange_pb2

NOW = dt.datetime(2026, 3, 2, 1, 30, tzinfo=dt.UTC)
INSTRUCTION_LINE = fw.INSTRUCTION_RECORD + 2


def instruction_set(count: int = 3) -> exchange_pb2.InstructionSet:
    message = exchange_pb2.InstructionSet(
        bank_code="CQRCB",
        policy_code="CQ-NY-001",
        policy_name="耕地地力保护补贴",
        period="2026",
    )
    message.header.subject_id = "500154-NYNC-CQ-NY-001-2026-t.i0"
    for row, person in enumerate(people(count, seed=11), start=1):
        message.instructions.add(
            instruction_id=f"500154-NYNC-CQ-NY-001-2026-t.r{row}",
            payee_name=person.name,
            account_number=person.account,
            amount_fen=10_000 * row + 1,
        )
    return message


def instruction_bytes(message: exchange_pb2.InstructionSet) -> bytes:
    out = io.BytesIO()
    fw.write_instruction_file(
        out, fw.InstructionFileHeader.for_set(message, NOW), message.instructions
    )
    return out.getvalue()


def lines_of(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")[:-1]


def join(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\r\n" for line in lines)


def results() -> list[exchange_pb2.Result]:
    out = []
    for n, (status, reason) in enumerate(
        [
            (exchange_pb2.RESULT_STATUS_PAID, ""),
            (exchange_pb2.RESULT_STATUS_FAILED, "ACCOUNT_FROZEN"),
            (exchange_pb2.RESULT_STATUS_RETURNED, "ACCOUNT_CLOSED"),
        ]
    ):
        result = exchange_pb2.Result(
            instruction_id=f"b.r{n}",
            status=status,
            reason_code=reason,
            bank_reference=f"REF{n}",
        )
        result.completed_at.FromDatetime(NOW + dt.timedelta(hours=n))
        out.append(result)
    return out


def result_bytes(items: list[exchange_pb2.Result]) -> bytes:
    out = io.BytesIO()
    fw.write_result_file(
        out, fw.ResultFileHeader("CQRCB", "set.results", NOW, len(items)), items
    )
    return out.getvalue()


# -- layout -----------------------------------------------------------------


def test_every_record_has_the_record_length_and_ends_in_crlf() -> None:
    data = instruction_bytes(instruction_set())

    assert data.endswith(b"\r\n")
    assert [len(line) for line in lines_of(data)] == [fw.INSTRUCTION_RECORD] * 5
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_numbers_are_zero_padded_and_codes_space_padded() -> None:
    detail = lines_of(instruction_bytes(instruction_set(1)))[1]
    start = 1 + 80 + 60 + 34

    assert detail[start : start + 15] == b"000000000010001"
    assert detail[1:81].rstrip(b" ") == b"500154-NYNC-CQ-NY-001-2026-t.r1"
    assert detail[81] != 0x20


def test_widths_count_gbk_bytes() -> None:
    message = instruction_set(1)
    message.instructions[0].payee_name = "张三丰"

    detail = lines_of(instruction_bytes(message))[1]

    assert detail[81:141] == "张三丰".encode("gbk") + b" " * 54


def test_long_text_is_cut_at_a_character_boundary() -> None:
    message = instruction_set(1)
    # 59 bytes of ASCII then a two-byte character: it must not be split.
    message.instructions[0].payee_name = "A" * 59 + "张"

    detail = lines_of(instruction_bytes(message))[1]

    assert detail[81:141] == b"A" * 59 + b" "
    back = fw.load_instruction_set(io.BytesIO(instruction_bytes(message)))
    assert back.instructions[0].payee_name == "A" * 59


def test_a_code_that_does_not_fit_is_refused_not_cut() -> None:
    message = instruction_set(1)
    message.instructions[0].account_number = "6" * 35

    with pytest.raises(fw.FixedWidthEncodeError, match="account_number"):
        instruction_bytes(message)


def layout_table(layout: tuple[fw.Field, ...]) -> str:
    """The markdown table docs/connectors.md shows for a layout."""
    rows = ["| offset | width | type | field | meaning |", "|---|---|---|---|---|"]
    offset = 0
    for field in layout:
        rows.append(
            f"| {offset} | {field.width} | {field.kind.value} | `{field.name}` "
            f"| {field.meaning} |"
        )
        offset += field.width
    return "\n".join(rows)


@pytest.mark.parametrize(
    "layout",
    [
        fw.INSTRUCTION_HEADER_LAYOUT,
        fw.INSTRUCTION_DETAIL_LAYOUT,
        fw.INSTRUCTION_TRAILER_LAYOUT,
        fw.RESULT_HEADER_LAYOUT,
        fw.RESULT_DETAIL_LAYOUT,
        fw.RESULT_TRAILER_LAYOUT,
    ],
)
def test_docs_show_each_layout(layout: tuple[fw.Field, ...]) -> None:
    docs = (
        Path(__file__).resolve().parent.parent / "docs" / "connectors.md"
    ).read_text(encoding="utf-8")

    assert layout_table(layout) in docs


# -- round trips ------------------------------------------------------------


def test_instruction_file_round_trip() -> None:
    message = instruction_set(4)

    back = fw.load_instruction_set(io.BytesIO(instruction_bytes(message)))

    assert list(back.instructions) == list(message.instructions)
    assert back.header.subject_id == message.header.subject_id
    assert (back.bank_code, back.policy_code, back.period, back.policy_name) == (
        "CQRCB",
        "CQ-NY-001",
        "2026",
        "耕地地力保护补贴",
    )


def test_reader_gives_header_and_totals() -> None:
    reader = fw.InstructionFileReader(io.BytesIO(instruction_bytes(instruction_set())))

    items = list(reader)

    assert reader.header.created_at == NOW
    assert reader.header.count == 3
    assert reader.totals == fw.Totals(3, sum(i.amount_fen for i in items))


def test_empty_instruction_set_round_trips() -> None:
    message = instruction_set(0)

    back = fw.load_instruction_set(io.BytesIO(instruction_bytes(message)))

    assert len(back.instructions) == 0


def test_result_file_round_trip() -> None:
    items = results()

    header, back = fw.load_results(io.BytesIO(result_bytes(items)))

    assert back == items
    assert header == fw.ResultFileHeader("CQRCB", "set.results", NOW, 3)


def test_times_are_written_in_china_standard_time() -> None:
    header = lines_of(instruction_bytes(instruction_set(0)))[0]

    assert b"20260302093000" in header


# -- unencodable names -------------------------------------------------------


@pytest.mark.parametrize("name", ["𠀀华", "王𬌗", "李\u20ac"])
def test_a_name_gbk_cannot_encode_is_refused_naming_the_instruction(
    name: str,
) -> None:
    message = instruction_set(2)
    message.instructions[1].payee_name = name

    with pytest.raises(fw.UnencodableTextError) as caught:
        instruction_bytes(message)

    assert caught.value.instruction_id == message.instructions[1].instruction_id
    assert message.instructions[1].instruction_id in str(caught.value)
    assert name not in str(caught.value)
    assert name[:1] not in str(caught.value)


def test_check_instruction_lets_the_caller_route_to_manual_handling() -> None:
    message = instruction_set(3)
    message.instructions[1].payee_name = "𠀀"
    manual: list[str] = []
    ok: list[exchange_pb2.Instruction] = []

    for instruction in message.instructions:
        try:
            fw.check_instruction(instruction)
            ok.append(instruction)
        except fw.UnencodableTextError as exc:
            manual.append(str(exc.instruction_id))

    assert manual == [message.instructions[1].instruction_id]
    assert len(ok) == 2


@pytest.mark.parametrize("name", ["张\r\n三", " 张三", "张三\t"])
def test_control_characters_and_edge_spaces_are_refused(name: str) -> None:
    message = instruction_set(1)
    message.instructions[0].payee_name = name

    with pytest.raises(fw.FixedWidthEncodeError, match="payee_name"):
        instruction_bytes(message)


def test_header_count_must_match_what_is_written() -> None:
    message = instruction_set(2)
    header = fw.InstructionFileHeader.for_set(message, NOW)

    with pytest.raises(fw.FixedWidthEncodeError, match="count"):
        fw.write_instruction_file(io.BytesIO(), header, message.instructions[:1])


def test_non_positive_amount_is_refused_on_write() -> None:
    message = instruction_set(1)
    message.instructions[0].amount_fen = 0

    with pytest.raises(fw.FixedWidthEncodeError, match="amount_fen"):
        instruction_bytes(message)


# -- strict parsing ------------------------------------------------------------


def _replace(line: bytes, offset: int, new: bytes) -> bytes:
    return line[:offset] + new + line[offset + len(new) :]


def _broken_cases() -> dict[str, tuple[bytes, int, str]]:
    good = lines_of(instruction_bytes(instruction_set(2)))
    header, d1, d2, trailer = good
    amount_at = 1 + 80 + 60 + 34
    return {
        "empty file": (b"", 1, "empty"),
        "missing header": (join([d1, d2, trailer]), 1, "first record"),
        "missing trailer": (join([header, d1, d2]), 4, "trailer record is missing"),
        "unknown record type": (
            join([header, b"X" + d1[1:], d2, trailer]),
            2,
            "unknown record type",
        ),
        "second header": (join([header, header, d2, trailer]), 2, "second header"),
        "trailer count mismatch": (
            join([header, d1, trailer]),
            3,
            "trailer count",
        ),
        "trailer total mismatch": (
            join([header, d1, d2, _replace(trailer, 11, b"9" * 18)]),
            4,
            "trailer total",
        ),
        "header count mismatch": (
            join(
                [
                    _replace(header, 1 + 8 + 12 + 80 + 16 + 7 + 14, b"7" * 10),
                    d1,
                    d2,
                    trailer,
                ]
            ),
            4,
            "header count",
        ),
        "short line": (join([header, d1[:-1], d2, trailer]), 2, "bytes followed"),
        "long line": (join([header, d1 + b" ", d2, trailer]), 2, "bytes followed"),
        "bare LF": (
            header + b"\r\n" + d1 + b"\n" + d2 + b"\r\n" + trailer + b"\r\n",
            2,
            "CRLF",
        ),
        "no final CRLF": (join([header, d1, d2]) + trailer, 4, "CRLF"),
        "non-digit in amount": (
            join([header, _replace(d1, amount_at + 3, b"x"), d2, trailer]),
            2,
            "amount_fen must be digits",
        ),
        "full-width digit in amount": (
            join([header, _replace(d1, amount_at, "１".encode("gbk")), d2, trailer]),
            2,
            "amount_fen must be digits",
        ),
        "zero amount": (
            join([header, _replace(d1, amount_at, b"0" * 15), d2, trailer]),
            2,
            "positive",
        ),
        "undecodable bytes": (
            join([header, _replace(d1, 81, b"\xff\xff"), d2, trailer]),
            2,
            "not valid GBK",
        ),
        "character split by a field boundary": (
            join([header, _replace(d1, 140, "张".encode("gbk")), d2, trailer]),
            2,
            "payee_name is not valid GBK",
        ),
        "filler not spaces": (
            join([header, d1[:-1] + b"x", d2, trailer]),
            2,
            "filler",
        ),
        "empty instruction id": (
            join([header, _replace(d1, 1, b" " * 80), d2, trailer]),
            2,
            "instruction_id is empty",
        ),
        "data after trailer": (
            join([header, d1, d2, trailer, d1]),
            5,
            "after the trailer",
        ),
        "wrong format tag": (
            join([_replace(header, 1, b"YKTRES01"), d1, d2, trailer]),
            1,
            "format",
        ),
        "impossible created time": (
            join(
                [
                    _replace(header, 1 + 8 + 12 + 80 + 16 + 7, b"20261399"),
                    d1,
                    d2,
                    trailer,
                ]
            ),
            1,
            "created_at",
        ),
    }


@pytest.mark.parametrize("case", sorted(_broken_cases()))
def test_strict_parsing_refuses(case: str) -> None:
    data, line, problem = _broken_cases()[case]

    with pytest.raises(fw.FixedWidthFormatError) as caught:
        fw.load_instruction_set(io.BytesIO(data))

    assert caught.value.line == line
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"line {line}: ")


def test_parse_errors_never_show_personal_data() -> None:
    message = instruction_set(1)
    good = lines_of(instruction_bytes(message))
    broken = join([good[0], good[1][:-3] + b"abc", good[2]])

    with pytest.raises(fw.FixedWidthFormatError) as caught:
        fw.load_instruction_set(io.BytesIO(broken))

    text = str(caught.value)
    assert message.instructions[0].payee_name not in text
    assert message.instructions[0].account_number not in text


def test_result_file_refuses_an_instruction_file() -> None:
    with pytest.raises(fw.FixedWidthFormatError, match="bytes followed by CRLF"):
        fw.load_results(io.BytesIO(instruction_bytes(instruction_set(1))))


@pytest.mark.parametrize(
    ("status", "reason", "problem"),
    [
        (b"UNKNOWN ", b"", "status must be"),
        (b"PAID    ", b"ACCOUNT_FROZEN", "PAID carries no reason"),
        (b"FAILED  ", b"", "not a known reason"),
        (b"RETURNED", b"NO_SUCH_REASON", "not a known reason"),
    ],
)
def test_result_status_and_reason_are_checked(
    status: bytes, reason: bytes, problem: str
) -> None:
    lines = lines_of(result_bytes(results()))
    detail = _replace(lines[1], 81, status)
    detail = _replace(detail, 89, reason.ljust(24, b" "))

    with pytest.raises(fw.FixedWidthFormatError, match=problem):
        fw.load_results(io.BytesIO(join([lines[0], detail, *lines[2:]])))


def test_writer_refuses_a_failed_result_without_reason() -> None:
    items = results()
    items[1].reason_code = ""

    with pytest.raises(fw.FixedWidthEncodeError, match="reason_code"):
        result_bytes(items)


def test_streaming_reader_raises_only_at_the_trailer() -> None:
    good = lines_of(instruction_bytes(instruction_set(2)))
    broken = join([good[0], good[1], good[2], _replace(good[3], 11, b"9" * 18)])
    reader = fw.InstructionFileReader(io.BytesIO(broken))
    seen = []

    with pytest.raises(fw.FixedWidthFormatError, match="trailer total"):
        seen.extend(reader)

    assert len(seen) == 2
    with pytest.raises(RuntimeError):
        _ = reader.totals


# -- never crash ------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_give_only_the_documented_error(data: bytes) -> None:
    for load in (fw.load_instruction_set, fw.load_results):
        with contextlib.suppress(fw.FixedWidthFormatError):
            load(io.BytesIO(data))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_files_give_only_the_documented_error(data: st.DataObject) -> None:
    good = instruction_bytes(instruction_set(2))
    position = data.draw(st.integers(0, len(good) - 1))
    replacement = data.draw(st.binary(min_size=1, max_size=4))
    mutated = good[:position] + replacement + good[position + len(replacement) :]

    try:
        back = fw.load_instruction_set(io.BytesIO(mutated))
    except fw.FixedWidthFormatError:
        return
    assert len(back.instructions) == 2
