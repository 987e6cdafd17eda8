"""GBK fixed-width files: instruction files to an agent bank, result files back.

Some agent banks exchange payment instructions and results as fixed-width text
files in GBK, the encoding their core systems read. This module writes and
reads both kinds, one record at a time, so neither side holds a whole file.

File layout (the tables in ``docs/connectors.md`` are generated from the
``*_LAYOUT`` tuples below and must match them):

  * A file is a header record ``H``, zero or more detail records ``D`` and a
    trailer record ``T``, in that order, and nothing else: no blank line, no
    byte-order mark, nothing after the trailer.
  * Every record of a file has the same length in bytes (``INSTRUCTION_RECORD``
    or ``RESULT_RECORD``) and ends with CRLF, the trailer included. CRLF is
    what the banks' Windows and mainframe transfer tools produce and expect;
    a reader refuses a bare LF, so a file mangled by a line-ending conversion
    is noticed rather than half-read.
  * The header's format tag (``YKTINS01``, ``YKTRES01``) names the kind and its
    version, so a result file can never be read as an instruction file.
  * Field widths count GBK bytes. Numbers are ASCII digits, right-aligned and
    zero-padded. Codes (ids, account numbers, reason codes) are printable
    ASCII without spaces, left-aligned and space-padded; a code that does not
    fit is refused, never cut. Text (payee name, policy name) is GBK,
    left-aligned and space-padded; text that does not fit is cut at a
    character boundary, so a cut never splits a two-byte character.
  * Times are ``YYYYMMDDHHMMSS`` in China Standard Time (UTC+8, no daylight
    saving), the clock bank staff read; readers return them in UTC.
  * The instruction trailer carries the count and the total in fen; the
    result trailer carries the count only, because a result carries no
    amount and the gateway knows each instruction's amount itself.

Text GBK cannot encode: a name with a character outside GBK (a rare
character such as U+20000) is refused with ``UnencodableTextError``, which
names the instruction id and the field, never the text. The caller routes
that instruction to manual handling and writes the others. We do not fall
back to GB18030: a bank core that decodes GBK would read GB18030's four-byte
sequences as two wrong characters, and the payee name would silently differ
from the account holder's. Nor do we replace the character: a name with a
"?" in it is a different name.

Reading is strict: any deviation raises ``FixedWidthFormatError`` naming the
line number and the problem, and nothing is skipped. Its messages never hold
field contents, so they are safe in logs and gRPC errors.

Threats:
  * A reader acts on details before the trailer has confirmed the count and
    total. The readers yield details as they go; a caller must finish the
    iteration without an error before it acts on anything
    (``load_instruction_set`` and ``load_results`` do that for it).
  * Oversized lines: each line is read with a bound of one record, so a file
    without line breaks cannot exhaust memory.
  * Personal data in errors: messages name line numbers, fields and
    instruction ids only.
"""

from __future__ import annotations

import datetime as dt
import enum
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from gateway.errors import InvalidArgumentError
from gateway.reasons import ReasonCode
from ykt.v1 import exchange_pb2

ENCODING = "gbk"
CRLF = b"\r\n"
CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "CST")
TIME_FORMAT = "%Y%m%d%H%M%S"

FORMAT_INSTRUCTIONS = "YKTINS01"
FORMAT_RESULTS = "YKTRES01"

INSTRUCTION_RECORD = 220
RESULT_RECORD = 180


class FixedWidthFormatError(InvalidArgumentError):
    """A fixed-width file does not follow the layout. Names a line, never data."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


class FixedWidthEncodeError(InvalidArgumentError):
    """A value cannot be written. Names the record and field, never the value."""

    def __init__(self, subject: str, field: str, problem: str) -> None:
        super().__init__(f"{subject}, field {field}: {problem}")
        self.subject = subject
        self.field = field


class UnencodableTextError(FixedWidthEncodeError):
    """Text holds a character GBK cannot encode: route the record to manual
    handling. ``instruction_id`` is set when the record is an instruction."""

    def __init__(self, subject: str, field: str, instruction_id: str | None) -> None:
        super().__init__(subject, field, "a character cannot be encoded in GBK")
        self.instruction_id = instruction_id


class Kind(enum.Enum):
    NUMBER = "9"  # ASCII digits, right-aligned, zero-padded, never cut
    CODE = "C"  # printable ASCII without spaces, left-aligned, never cut
    TEXT = "X"  # GBK text, left-aligned, cut at a character boundary
    FILLER = "F"  # spaces


@dataclass(frozen=True)
class Field:
    name: str
    width: int
    kind: Kind
    meaning: str
    required: bool = True


def _layout(*fields: Field) -> tuple[Field, ...]:
    return fields


INSTRUCTION_HEADER_LAYOUT = _layout(
    Field("record_type", 1, Kind.CODE, "`H`"),
    Field("format", 8, Kind.CODE, "`YKTINS01`: instruction file, version 1"),
    Field("bank_code", 12, Kind.CODE, "the agent bank's code"),
    Field("set_id", 80, Kind.CODE, "the instruction set id"),
    Field("policy_code", 16, Kind.CODE, "the policy, e.g. `CQ-NY-001`"),
    Field("period", 7, Kind.CODE, "the period, `2026` or `2026-12`"),
    Field("created_at", 14, Kind.NUMBER, "creation time, UTC+8"),
    Field("count", 10, Kind.NUMBER, "number of detail records"),
    Field("policy_name", 60, Kind.TEXT, "the policy's name (may be cut)"),
    Field("filler", 12, Kind.FILLER, "spaces"),
)
INSTRUCTION_DETAIL_LAYOUT = _layout(
    Field("record_type", 1, Kind.CODE, "`D`"),
    Field("instruction_id", 80, Kind.CODE, "the instruction id; pay it once"),
    Field("payee_name", 60, Kind.TEXT, "the beneficiary's name"),
    Field("account_number", 34, Kind.CODE, "the one-card account to credit"),
    Field("amount_fen", 15, Kind.NUMBER, "amount in fen, positive"),
    Field("filler", 30, Kind.FILLER, "spaces"),
)
INSTRUCTION_TRAILER_LAYOUT = _layout(
    Field("record_type", 1, Kind.CODE, "`T`"),
    Field("count", 10, Kind.NUMBER, "number of detail records"),
    Field("total_fen", 18, Kind.NUMBER, "sum of the detail amounts in fen"),
    Field("filler", 191, Kind.FILLER, "spaces"),
)
RESULT_HEADER_LAYOUT = _layout(
    Field("record_type", 1, Kind.CODE, "`H`"),
    Field("format", 8, Kind.CODE, "`YKTRES01`: result file, version 1"),
    Field("bank_code", 12, Kind.CODE, "the reporting agent bank's code"),
    Field("set_id", 80, Kind.CODE, "the result set id, chosen by the bank"),
    Field("created_at", 14, Kind.NUMBER, "creation time, UTC+8"),
    Field("count", 10, Kind.NUMBER, "number of detail records"),
    Field("filler", 55, Kind.FILLER, "spaces"),
)
RESULT_DETAIL_LAYOUT = _layout(
    Field("record_type", 1, Kind.CODE, "`D`"),
    Field("instruction_id", 80, Kind.CODE, "the instruction this result is for"),
    Field("status", 8, Kind.CODE, "`PAID`, `FAILED` or `RETURNED`"),
    Field(
        "reason_code",
        24,
        Kind.CODE,
        "a gateway reason code; spaces for PAID",
        required=False,
    ),
    Field(
        "bank_reference",
        32,
        Kind.CODE,
        "the bank's own transaction reference",
        required=False,
    ),
    Field("completed_at", 14, Kind.NUMBER, "when the bank completed it, UTC+8"),
    Field("filler", 21, Kind.FILLER, "spaces"),
)
RESULT_TRAILER_LAYOUT = _layout(
    Field("record_type", 1, Kind.CODE, "`T`"),
    Field("count", 10, Kind.NUMBER, "number of detail records"),
    Field("filler", 169, Kind.FILLER, "spaces"),
)

LAYOUTS: Mapping[str, tuple[int, Sequence[tuple[Field, ...]]]] = {
    FORMAT_INSTRUCTIONS: (
        INSTRUCTION_RECORD,
        (
            INSTRUCTION_HEADER_LAYOUT,
            INSTRUCTION_DETAIL_LAYOUT,
            INSTRUCTION_TRAILER_LAYOUT,
        ),
    ),
    FORMAT_RESULTS: (
        RESULT_RECORD,
        (RESULT_HEADER_LAYOUT, RESULT_DETAIL_LAYOUT, RESULT_TRAILER_LAYOUT),
    ),
}
for _length, _layouts in LAYOUTS.values():
    for _fields in _layouts:
        assert sum(f.width for f in _fields) == _length, "layout does not add up"

_STATUS_NAMES: Mapping[str, exchange_pb2.ResultStatus.ValueType] = {
    "PAID": exchange_pb2.RESULT_STATUS_PAID,
    "FAILED": exchange_pb2.RESULT_STATUS_FAILED,
    "RETURNED": exchange_pb2.RESULT_STATUS_RETURNED,
}
_STATUS_OF: Mapping[exchange_pb2.ResultStatus.ValueType, str] = {
    value: name for name, value in _STATUS_NAMES.items()
}
_DIGITS = frozenset(b"0123456789")


@dataclass(frozen=True)
class InstructionFileHeader:
    """What the instruction file's header says about the whole set."""

    bank_code: str
    set_id: str
    policy_code: str
    policy_name: str
    period: str
    created_at: dt.datetime
    count: int

    @classmethod
    def for_set(
        cls, instruction_set: exchange_pb2.InstructionSet, created_at: dt.datetime
    ) -> InstructionFileHeader:
        return cls(
            bank_code=instruction_set.bank_code,
            set_id=instruction_set.header.subject_id,
            policy_code=instruction_set.policy_code,
            policy_name=instruction_set.policy_name,
            period=instruction_set.period,
            created_at=created_at,
            count=len(instruction_set.instructions),
        )


@dataclass(frozen=True)
class ResultFileHeader:
    bank_code: str
    set_id: str
    created_at: dt.datetime
    count: int


@dataclass(frozen=True)
class Totals:
    count: int
    total_fen: int


# -- encoding ---------------------------------------------------------------


def _is_clean_text(text: str) -> bool:
    """No control, format or separator characters other than the plain space."""
    return all(
        ch == " " or unicodedata.category(ch) not in {"Cc", "Cf", "Zl", "Zp", "Zs"}
        for ch in text
    )


def _cut_gbk(encoded_chars: Iterable[bytes], width: int) -> bytes:
    """Join encoded characters while they fit; never split one."""
    out = bytearray()
    for piece in encoded_chars:
        if len(out) + len(piece) > width:
            break
        out += piece
    return bytes(out)


def _encode_field(
    field: Field, value: str | int, subject: str, instruction_id: str | None
) -> bytes:
    if field.kind is Kind.FILLER:
        return b" " * field.width

    if field.kind is Kind.NUMBER:
        if not isinstance(value, int) or value < 0:
            raise FixedWidthEncodeError(subject, field.name, "not a non-negative int")
        digits = str(value).encode("ascii")
        if len(digits) > field.width:
            raise FixedWidthEncodeError(subject, field.name, "number too large")
        return digits.rjust(field.width, b"0")

    text = str(value)
    if field.required and not text:
        raise FixedWidthEncodeError(subject, field.name, "must not be empty")

    if field.kind is Kind.CODE:
        if not all(0x21 <= ord(ch) <= 0x7E for ch in text):
            raise FixedWidthEncodeError(
                subject, field.name, "must be printable ASCII without spaces"
            )
        if len(text) > field.width:
            raise FixedWidthEncodeError(
                subject, field.name, f"longer than {field.width} bytes"
            )
        return text.encode("ascii").ljust(field.width, b" ")

    if text != text.strip(" ") or not _is_clean_text(text):
        raise FixedWidthEncodeError(
            subject, field.name, "has edge spaces or control characters"
        )
    try:
        pieces = [ch.encode(ENCODING) for ch in text]
    except UnicodeEncodeError:
        raise UnencodableTextError(subject, field.name, instruction_id) from None
    cut = _cut_gbk(pieces, field.width)
    return cut.rstrip(b" ").ljust(field.width, b" ")


def _encode_record(
    layout: tuple[Field, ...],
    values: Mapping[str, str | int],
    *,
    subject: str,
    instruction_id: str | None = None,
) -> bytes:
    return (
        b"".join(
            _encode_field(field, values.get(field.name, ""), subject, instruction_id)
            for field in layout
        )
        + CRLF
    )


def _china_time(moment: dt.datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return int(moment.astimezone(CHINA_TZ).strftime(TIME_FORMAT))


def check_instruction(instruction: exchange_pb2.Instruction) -> None:
    """Raise as the writer would for this instruction, without writing.

    Lets a caller take unencodable instructions out (to manual handling)
    before it starts a file.
    """
    _encode_detail(instruction)


def _encode_detail(instruction: exchange_pb2.Instruction) -> bytes:
    iid = instruction.instruction_id
    subject = "instruction " + (
        iid if iid and all(0x21 <= ord(c) <= 0x7E for c in iid) else "(bad id)"
    )
    if instruction.amount_fen <= 0:
        raise FixedWidthEncodeError(subject, "amount_fen", "must be positive")
    return _encode_record(
        INSTRUCTION_DETAIL_LAYOUT,
        {
            "record_type": "D",
            "instruction_id": iid,
            "payee_name": instruction.payee_name,
            "account_number": instruction.account_number,
            "amount_fen": instruction.amount_fen,
        },
        subject=subject,
        instruction_id=iid,
    )


def write_instruction_file(
    out: BinaryIO,
    header: InstructionFileHeader,
    instructions: Iterable[exchange_pb2.Instruction],
) -> Totals:
    """Write header, one detail per instruction and the trailer, streaming.

    ``header.count`` must equal the number of instructions; the trailer's
    total is computed here. On any error the output is incomplete and must be
    discarded (``connectors.exchange_files`` writes to a temporary name).
    """
    out.write(
        _encode_record(
            INSTRUCTION_HEADER_LAYOUT,
            {
                "record_type": "H",
                "format": FORMAT_INSTRUCTIONS,
                "bank_code": header.bank_code,
                "set_id": header.set_id,
                "policy_code": header.policy_code,
                "period": header.period,
                "created_at": _china_time(header.created_at),
                "count": header.count,
                "policy_name": header.policy_name,
            },
            subject="header",
        )
    )

    count = total = 0
    for instruction in instructions:
        out.write(_encode_detail(instruction))
        count += 1
        total += instruction.amount_fen

    if count != header.count:
        raise FixedWidthEncodeError("trailer", "count", "header count is wrong")
    out.write(
        _encode_record(
            INSTRUCTION_TRAILER_LAYOUT,
            {"record_type": "T", "count": count, "total_fen": total},
            subject="trailer",
        )
    )
    return Totals(count, total)


def write_result_file(
    out: BinaryIO, header: ResultFileHeader, results: Iterable[exchange_pb2.Result]
) -> Totals:
    """Write a result file, streaming. ``header.count`` must be right."""
    out.write(
        _encode_record(
            RESULT_HEADER_LAYOUT,
            {
                "record_type": "H",
                "format": FORMAT_RESULTS,
                "bank_code": header.bank_code,
                "set_id": header.set_id,
                "created_at": _china_time(header.created_at),
                "count": header.count,
            },
            subject="header",
        )
    )

    count = 0
    for result in results:
        out.write(_encode_result(result))
        count += 1

    if count != header.count:
        raise FixedWidthEncodeError("trailer", "count", "header count is wrong")
    out.write(
        _encode_record(
            RESULT_TRAILER_LAYOUT,
            {"record_type": "T", "count": count},
            subject="trailer",
        )
    )
    return Totals(count, 0)


def _encode_result(result: exchange_pb2.Result) -> bytes:
    subject = f"result for instruction {result.instruction_id}"
    status = _STATUS_OF.get(result.status)
    if status is None:
        raise FixedWidthEncodeError(subject, "status", "unspecified status")
    _check_reason(
        status,
        result.reason_code,
        lambda problem: FixedWidthEncodeError(subject, "reason_code", problem),
    )
    completed = result.completed_at.ToDatetime(tzinfo=dt.UTC)
    return _encode_record(
        RESULT_DETAIL_LAYOUT,
        {
            "record_type": "D",
            "instruction_id": result.instruction_id,
            "status": status,
            "reason_code": result.reason_code,
            "bank_reference": result.bank_reference,
            "completed_at": _china_time(completed),
        },
        subject=subject,
    )


def _check_reason(status: str, reason: str, error: Callable[[str], Exception]) -> None:
    """PAID carries no reason; FAILED and RETURNED carry a known reason code."""
    if status == "PAID":
        if reason:
            raise error("PAID carries no reason code")
        return

    if reason not in ReasonCode.__members__:
        raise error("not a known reason code")


# -- decoding ---------------------------------------------------------------


class _Lines:
    """Bounded, numbered records from a byte stream."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        self._stream = stream
        self._length = length
        self.number = 0

    def next(self) -> bytes | None:
        line = self._stream.readline(self._length + len(CRLF))
        if not line:
            return None
        self.number += 1
        if len(line) != self._length + len(CRLF) or not line.endswith(CRLF):
            raise FixedWidthFormatError(
                self.number,
                f"a record must be {self._length} bytes followed by CRLF",
            )
        return line[: self._length]

    def fail(self, problem: str) -> FixedWidthFormatError:
        return FixedWidthFormatError(self.number, problem)


def _decode_field(field: Field, raw: bytes, lines: _Lines) -> str | int:
    if field.kind is Kind.FILLER:
        if raw.strip(b" "):
            raise lines.fail(f"{field.name} must be spaces")
        return ""

    if field.kind is Kind.NUMBER:
        if not raw or not all(b in _DIGITS for b in raw):
            raise lines.fail(f"{field.name} must be digits")
        return int(raw)

    if field.kind is Kind.CODE:
        value = raw.rstrip(b" ")
        if not all(0x21 <= b <= 0x7E for b in value):
            raise lines.fail(f"{field.name} must be printable ASCII without spaces")
        if field.required and not value:
            raise lines.fail(f"{field.name} is empty")
        return value.decode("ascii")

    try:
        text = raw.decode(ENCODING)
    except UnicodeDecodeError:
        raise lines.fail(f"{field.name} is not valid GBK") from None
    value_text = text.rstrip(" ")
    if value_text != value_text.lstrip(" ") or not _is_clean_text(value_text):
        raise lines.fail(f"{field.name} has leading spaces or control characters")
    if field.required and not value_text:
        raise lines.fail(f"{field.name} is empty")
    return value_text


def _decode(layout: tuple[Field, ...], record: bytes, lines: _Lines) -> dict[str, Any]:
    values: dict[str, Any] = {}
    offset = 0
    for field in layout:
        values[field.name] = _decode_field(
            field, record[offset : offset + field.width], lines
        )
        offset += field.width
    return values


def _time(value: int, name: str, lines: _Lines) -> dt.datetime:
    try:
        local = dt.datetime.strptime(f"{value:014d}", TIME_FORMAT)
        return local.replace(tzinfo=CHINA_TZ).astimezone(dt.UTC)
    except (ValueError, OverflowError):
        # OverflowError: a time in year 1 before 08:00 has no UTC equivalent.
        raise lines.fail(f"{name} is not a valid time") from None


def _record_type(record: bytes, lines: _Lines) -> str:
    kind = record[:1]
    if kind not in (b"H", b"D", b"T"):
        raise lines.fail("unknown record type")
    return kind.decode("ascii")


class _Reader:
    """Header on construction, details on iteration, trailer at the end."""

    format_tag = ""

    def __init__(self, stream: BinaryIO) -> None:
        length, layouts = LAYOUTS[self.format_tag]
        self._header_layout, self._detail_layout, self._trailer_layout = layouts
        self._lines = _Lines(stream, length)
        self._totals: Totals | None = None

        record = self._lines.next()
        if record is None:
            raise FixedWidthFormatError(1, "the file is empty")
        if _record_type(record, self._lines) != "H":
            raise self._lines.fail("the first record must be the header")
        values = _decode(self._header_layout, record, self._lines)
        if values["format"] != self.format_tag:
            raise self._lines.fail(f"format must be {self.format_tag}")
        self._header_values = values

    @property
    def totals(self) -> Totals:
        """The trailer's totals; only after iteration has finished."""
        if self._totals is None:
            raise RuntimeError("the trailer has not been read yet")
        return self._totals

    def _details(self) -> Iterator[dict[str, Any]]:
        declared = int(self._header_values["count"])
        count = 0
        while True:
            record = self._lines.next()
            if record is None:
                raise FixedWidthFormatError(
                    self._lines.number + 1, "the trailer record is missing"
                )
            kind = _record_type(record, self._lines)
            if kind == "H":
                raise self._lines.fail("a second header record")
            if kind == "T":
                break
            count += 1
            yield _decode(self._detail_layout, record, self._lines)

        trailer = _decode(self._trailer_layout, record, self._lines)
        if trailer["count"] != count:
            raise self._lines.fail("trailer count does not match the details")
        if declared != count:
            raise self._lines.fail("header count does not match the details")
        self._check_trailer(trailer)
        if self._lines.next() is not None:
            raise self._lines.fail("data after the trailer record")
        self._totals = Totals(count, int(trailer.get("total_fen", 0)))

    def _check_trailer(self, trailer: Mapping[str, Any]) -> None:
        pass


class InstructionFileReader(_Reader):
    """Read an instruction file. The header is read (and checked) at once.

    Iterating yields one ``Instruction`` per detail record; the count and
    total are checked against the trailer when the iteration ends. DANGER:
    do not act on any instruction before the iteration has ended without an
    error.
    """

    format_tag = FORMAT_INSTRUCTIONS

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__(stream)
        values = self._header_values
        self.header = InstructionFileHeader(
            bank_code=values["bank_code"],
            set_id=values["set_id"],
            policy_code=values["policy_code"],
            policy_name=values["policy_name"],
            period=values["period"],
            created_at=_time(values["created_at"], "created_at", self._lines),
            count=values["count"],
        )
        self._total = 0

    def __iter__(self) -> Iterator[exchange_pb2.Instruction]:
        for values in self._details():
            if values["amount_fen"] <= 0:
                raise self._lines.fail("amount_fen must be positive")
            self._total += values["amount_fen"]
            yield exchange_pb2.Instruction(
                instruction_id=values["instruction_id"],
                payee_name=values["payee_name"],
                account_number=values["account_number"],
                amount_fen=values["amount_fen"],
            )

    def _check_trailer(self, trailer: Mapping[str, Any]) -> None:
        if trailer["total_fen"] != self._total:
            raise self._lines.fail("trailer total does not match the details")


class ResultFileReader(_Reader):
    """Read a result file. Iterating yields one ``Result`` per detail record.

    DANGER: do not act on any result before the iteration has ended without
    an error; the trailer is checked last.
    """

    format_tag = FORMAT_RESULTS

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__(stream)
        values = self._header_values
        self.header = ResultFileHeader(
            bank_code=values["bank_code"],
            set_id=values["set_id"],
            created_at=_time(values["created_at"], "created_at", self._lines),
            count=values["count"],
        )

    def __iter__(self) -> Iterator[exchange_pb2.Result]:
        for values in self._details():
            status = _STATUS_NAMES.get(values["status"])
            if status is None:
                raise self._lines.fail("status must be PAID, FAILED or RETURNED")
            _check_reason(
                values["status"],
                values["reason_code"],
                lambda problem: self._lines.fail(f"reason_code: {problem}"),
            )
            result = exchange_pb2.Result(
                instruction_id=values["instruction_id"],
                status=status,
                reason_code=values["reason_code"],
                bank_reference=values["bank_reference"],
            )
            result.completed_at.FromDatetime(
                _time(values["completed_at"], "completed_at", self._lines)
            )
            yield result


def load_instruction_set(stream: BinaryIO) -> exchange_pb2.InstructionSet:
    """Read a whole instruction file; return it only once it is all valid.

    The set id goes into ``header.subject_id``; the rest of the signing
    header stays empty.
    """
    reader = InstructionFileReader(stream)
    instructions = list(reader)
    message = exchange_pb2.InstructionSet(
        bank_code=reader.header.bank_code,
        policy_code=reader.header.policy_code,
        policy_name=reader.header.policy_name,
        period=reader.header.period,
        instructions=instructions,
    )
    message.header.subject_id = reader.header.set_id
    return message


def load_results(
    stream: BinaryIO,
) -> tuple[ResultFileHeader, list[exchange_pb2.Result]]:
    """Read a whole result file; return it only once it is all valid."""
    reader = ResultFileReader(stream)
    results = list(reader)
    return reader.header, results
