"""Property tests: the parsers of untrusted input fail only with their own error.

Every parser the gateway points at bytes from outside documents one error
for input it refuses; anything else escaping it is a bug (in the server it
becomes INTERNAL, in a file connector a crashed poll loop). These properties
feed the parsers arbitrary and half-valid input:

  * the department file reader (``FileFormatError``): arbitrary bytes, text
    in UTF-8 with and without BOM and in GBK, generated lists with random
    header synonyms, title rows, blank rows and a 合计 row, and bytes that
    claim to be xlsx;
  * ``open_envelope`` (``GatewayError`` subclasses only): arbitrary bytes as
    a ``SignedEnvelope``, envelopes with random fields, and payloads with
    random headers signed by a real, trusted signer;
  * ``decode_ack`` (``ValueError``).

The fixed-width readers and the pain.002 reader have their properties in
``tests/test_fixed_width.py`` and ``tests/test_iso20022.py``; they are not
repeated here. ``fuzz/`` holds the matching atheris targets.

Inputs that once broke production code stay as explicit ``@example``s, so
the fixes are tested on every run.
All data is generated here and fictional.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import itertools
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from connectors.file_protocol import decode_ack, encode_ack
from fuzz.targets import department_file as department_target
from gateway.envelope import (
    CLOCK_SKEW,
    MAX_VALIDITY,
    Opened,
    open_envelope,
    pae,
    payload_type_of,
)
from gateway.errors import EnvelopeError, ExpiredEnvelopeError, GatewayError
from gateway.files import (
    HEADER_SYNONYMS,
    REQUIRED_FIELDS,
    Field,
    FileFormatError,
    SourceRow,
    read_department_file,
)
from keys.ca import DevelopmentCA
from keys.identity import Identity, Role
from keys.signing import Signer
from keys.trust import TrustStore
from ykt.v1 import batch_pb2, envelope_pb2

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FEWER = settings(PROPERTY, max_examples=100)

# --- department files ------------------------------------------------------


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the module: hypothesis reruns a test in one function
    call, so a function-scoped tmp_path would be shared anyway."""
    return tmp_path_factory.mktemp("department-files")


@dataclass(frozen=True)
class ReadBack:
    rows: list[SourceRow]
    declared_total_fen: int | None


def read_back(path: Path) -> ReadBack:
    """Open, stream every row and read the total, as submission does.
    Raises only what the reader raises."""
    department_file = read_department_file(path)
    rows = list(department_file.iter_rows())
    return ReadBack(rows, department_file.declared_total_fen)


def read_or_refuse(path: Path, content: bytes) -> ReadBack | FileFormatError:
    path.write_bytes(content)
    try:
        return read_back(path)
    except FileFormatError as refused:
        return refused


@PROPERTY
@given(
    prefix=st.sampled_from([b"", codecs.BOM_UTF8]),
    data=st.binary(max_size=2000),
)
def test_csv_of_arbitrary_bytes_is_read_or_refused_whole(
    scratch: Path, prefix: bytes, data: bytes
) -> None:
    outcome = read_or_refuse(scratch / "bytes.csv", prefix + data)

    assert isinstance(outcome, ReadBack | FileFormatError)


# Pieces that steer random text towards lists: separators, quotes, line
# breaks, header synonyms, total markers, footer words and amounts.
_CSV_TOKENS = st.sampled_from(
    [
        ",",
        '"',
        "\r\n",
        "\n",
        "\r",
        " ",
        "\u3000",
        "合计",
        "总计",
        "制表人：",
        "1,234.50",
        "￥84.15000000000001",
        "5.00154E+17",
        *itertools.chain.from_iterable(HEADER_SYNONYMS.values()),
        "补贴金额（元）",
    ]
)


def _text(alphabet: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(_CSV_TOKENS, alphabet), max_size=120).map("".join)


@PROPERTY
@given(
    encoding=st.sampled_from(["utf-8", "utf-8-sig"]),
    text=_text(st.characters(codec="utf-8")),
)
def test_utf8_text_is_read_or_refused_whole(
    scratch: Path, encoding: str, text: str
) -> None:
    outcome = read_or_refuse(scratch / "utf8.csv", text.encode(encoding))

    assert isinstance(outcome, ReadBack | FileFormatError)


@PROPERTY
@given(text=_text(st.characters(codec="gbk")))
def test_gbk_text_is_read_or_refused_whole(scratch: Path, text: str) -> None:
    outcome = read_or_refuse(scratch / "gbk.csv", text.encode("gbk"))

    assert isinstance(outcome, ReadBack | FileFormatError)


# A generated list: what a department's own system or staff would write.

_OPTIONAL = (Field.BANK_NAME, Field.PROXY_NAME, Field.PROXY_ID_NUMBER)
_EXTRA_COLUMNS = ("序号", "备注", "村组", "补贴标准（元/亩）", "面积（亩）")
_TITLES = ("2026年耕地地力保护补贴发放清册", "填报单位：测试乡人民政府", "单位：元")
_HEADER_DECORATION = st.sampled_from(["", " ", "\u3000", "（元）", "(元)"])
# Fictional names; no character of 合计 or 总计, so no record is a total row.
_NAME_CHARS = "赵钱孙李周吴郑王冯陈测试甲乙丙丁"


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


@dataclass
class GeneratedList:
    content: bytes
    records: list[SourceRow]
    declared_total_fen: int | None


@st.composite
def department_lists(draw: st.DrawFn) -> GeneratedList:
    # 1. Columns: the required fields, some optional ones and some that the
    #    reader must ignore, in any order, each under a random synonym.
    optional = draw(st.lists(st.sampled_from(_OPTIONAL), unique=True))
    extras = draw(st.lists(st.sampled_from(_EXTRA_COLUMNS), unique=True))
    columns: list[Field | str] = draw(
        st.permutations([*REQUIRED_FIELDS, *optional, *extras])
    )
    header = [
        draw(st.sampled_from(HEADER_SYNONYMS[column])) + draw(_HEADER_DECORATION)
        if isinstance(column, Field)
        else column
        for column in columns
    ]
    amount_column = columns.index(Field.AMOUNT)

    # 2. Title and blank rows above the header, inside the scan window.
    lines: list[list[str]] = []
    for title in draw(st.lists(st.sampled_from(_TITLES), max_size=3)):
        lines.append([title])
    lines.extend([] for _ in range(draw(st.integers(0, 2))))
    lines.append(header)

    # 3. Records, with blank rows between them.
    records: list[SourceRow] = []
    total_fen = 0
    for number in range(1, draw(st.integers(0, 8)) + 1):
        if draw(st.booleans()):
            lines.append([""] * draw(st.integers(0, len(columns))))
        fen = draw(st.integers(0, 10**10))
        total_fen += fen
        values = {
            Field.NAME: draw(st.text(_NAME_CHARS, min_size=1, max_size=4)),
            Field.ID_NUMBER: draw(st.from_regex(r"[0-9]{17}[0-9X]", fullmatch=True)),
            Field.ACCOUNT_NUMBER: draw(st.from_regex(r"[0-9]{16,19}", fullmatch=True)),
            Field.AMOUNT: _yuan(fen),
            Field.BANK_NAME: draw(st.sampled_from(["", "测试农村商业银行"])),
            Field.PROXY_NAME: draw(st.sampled_from(["", "测试丁"])),
            Field.PROXY_ID_NUMBER: "",
        }
        lines.append(
            [
                values[column] if isinstance(column, Field) else str(number)
                for column in columns
            ]
        )
        records.append(
            SourceRow(
                row=number,
                name=values[Field.NAME],
                id_number=values[Field.ID_NUMBER],
                account_number=values[Field.ACCOUNT_NUMBER],
                amount=values[Field.AMOUNT],
                bank_name=values[Field.BANK_NAME] if Field.BANK_NAME in columns else "",
                proxy_name=(
                    values[Field.PROXY_NAME] if Field.PROXY_NAME in columns else ""
                ),
                proxy_id_number="",
                file_row=len(lines),
            )
        )

    # 4. A 合计 row, marker in the first column, then footer lines. The
    #    marker must be the row's first cell, so the amount column cannot
    #    be the first one.
    declared: int | None = None
    if amount_column != 0 and draw(st.booleans()):
        total = [""] * len(columns)
        total[0] = draw(st.sampled_from(["合计", "总计", "合 计"]))
        total[amount_column] = _yuan(total_fen)
        lines.append(total)
        declared = total_fen
        if draw(st.booleans()):
            lines.append(["制表人：", "", "审核人："])

    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(lines)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "gbk"]))
    return GeneratedList(out.getvalue().encode(encoding), records, declared)


@FEWER
@given(generated=department_lists())
def test_generated_lists_read_back_every_record(
    scratch: Path, generated: GeneratedList
) -> None:
    path = scratch / "generated.csv"
    path.write_bytes(generated.content)

    read = read_back(path)

    assert read.rows == generated.records
    assert read.declared_total_fen == generated.declared_total_fen


# xlsx: a zip of XML parts. Random bytes after the zip magic are not a zip;
# a valid zip with a broken worksheet reaches openpyxl's row parsing.

_ZIP_MAGIC = b"PK\x03\x04"


@PROPERTY
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_as_xlsx_are_refused_as_a_file_format_error(
    scratch: Path, data: bytes
) -> None:
    outcome = read_or_refuse(scratch / "bytes.xlsx", _ZIP_MAGIC + data)

    assert isinstance(outcome, FileFormatError)


_SHEET = department_target.xlsx_parts()[department_target.SHEET_PART]
_TRUNCATED_SHEET = _SHEET[: len(_SHEET) // 2]


@PROPERTY
@given(
    position=st.integers(0, len(_SHEET)),
    cut=st.integers(0, 64),
    replacement=st.binary(max_size=8),
)
@example(position=len(_TRUNCATED_SHEET), cut=len(_SHEET), replacement=b"")
def test_xlsx_with_a_broken_worksheet_is_read_or_refused_whole(
    scratch: Path, position: int, cut: int, replacement: bytes
) -> None:
    sheet = _SHEET[:position] + replacement + _SHEET[position + cut :]
    content = department_target.xlsx_with_sheet(sheet)

    outcome = read_or_refuse(scratch / "broken-sheet.xlsx", content)

    assert isinstance(outcome, ReadBack | FileFormatError)


# --- envelopes -------------------------------------------------------------

NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
AUDIENCE = "gateway"
SENDER = Identity(Role.DEPARTMENT, "500154-NYNC")
MANIFEST = payload_type_of(batch_pb2.BatchManifest())
# What google.protobuf.Timestamp can hold: 0001-01-01 to 9999-12-31.
FIRST_SECOND = -62_135_596_800
LAST_SECOND = 253_402_300_799


@dataclass(frozen=True)
class Pki:
    trust: TrustStore
    signer: Signer
    tls_cert_der: bytes


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A real development CA, its trust store and a department's signing key,
    all on the fixed clock NOW."""
    directory = tmp_path_factory.mktemp("pki")
    ca = DevelopmentCA.open_or_create(directory, clock=lambda: NOW)
    credentials = ca.dev_generate_credentials(SENDER)
    assert credentials.signing_cert is not None
    assert credentials.signing_key is not None
    trust = TrustStore(ca.ca_path, [ca.crl_path], clock=lambda: NOW)
    signer = Signer(credentials.signing_cert, credentials.signing_key)
    from cryptography.hazmat.primitives.serialization import Encoding

    return Pki(trust, signer, credentials.cert.public_bytes(Encoding.DER))


def open_manifest(
    pki: Pki, envelope: envelope_pb2.SignedEnvelope
) -> Opened[batch_pb2.BatchManifest]:
    return open_envelope(
        envelope, batch_pb2.BatchManifest, trust=pki.trust, audience=AUDIENCE, now=NOW
    )


def sign(pki: Pki, payload: bytes) -> envelope_pb2.SignedEnvelope:
    return envelope_pb2.SignedEnvelope(
        payload_type=MANIFEST,
        payload=payload,
        signature=pki.signer.sign(pae(MANIFEST, payload)),
        signer_certificate=pki.signer.cert_der,
    )


@PROPERTY
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_as_an_envelope_give_only_gateway_errors(
    pki: Pki, data: bytes
) -> None:
    try:
        envelope = envelope_pb2.SignedEnvelope.FromString(data)
    except DecodeError:
        return  # the network layer refuses it before the gateway's code

    with pytest.raises(GatewayError):
        open_manifest(pki, envelope)


@PROPERTY
@given(data=st.data())
def test_envelopes_with_random_fields_give_only_gateway_errors(
    pki: Pki, data: st.DataObject
) -> None:
    payload = data.draw(st.binary(max_size=300), label="payload")
    real_signature = pki.signer.sign(pae(MANIFEST, payload))
    real_cert = pki.signer.cert_der
    envelope = envelope_pb2.SignedEnvelope(
        payload_type=data.draw(
            st.one_of(st.sampled_from([MANIFEST, "ykt.v1.RecordChunk", ""]), st.text()),
            label="payload_type",
        ),
        payload=payload,
        signature=data.draw(
            st.one_of(
                st.just(real_signature),
                st.binary(max_size=80),
                st.just(real_signature[:-1]),
            ),
            label="signature",
        ),
        signer_certificate=data.draw(
            st.one_of(
                st.just(real_cert),
                st.just(pki.tls_cert_der),
                st.binary(max_size=80),
                st.integers(0, len(real_cert) - 1).map(lambda n: real_cert[:n]),
            ),
            label="signer_certificate",
        ),
    )

    try:
        opened = open_manifest(pki, envelope)
    except GatewayError as refused:
        event(f"refused: {type(refused).__name__}")
        return

    # Only the signer's own bytes over the expected type can open, and then
    # the payload is what was signed.
    assert envelope.payload_type == MANIFEST
    assert envelope.signer_certificate == real_cert
    assert opened.payload == payload


@dataclass(frozen=True)
class HeaderCase:
    sender: str
    audience: str
    subject_id: str
    key_id: str
    created_at: tuple[int, int]
    expires_at: tuple[int, int]


def _timestamp_near_now() -> st.SearchStrategy[tuple[int, int]]:
    now = int(NOW.timestamp())
    week = int(MAX_VALIDITY.total_seconds())
    return st.tuples(
        st.one_of(
            st.integers(now - 2 * week, now + 2 * week),
            st.integers(FIRST_SECOND, LAST_SECOND),
        ),
        st.integers(0, 999_999_999),
    )


def _representable(seconds: int) -> int:
    return max(FIRST_SECOND, min(seconds, LAST_SECOND))


def expected_refusal(case: HeaderCase, key_id: str) -> type[GatewayError] | None:
    """What open_envelope must raise for this header, by its docstring."""
    created = _to_datetime(case.created_at)
    expires = _to_datetime(case.expires_at)
    binding_holds = (
        case.key_id == key_id
        and case.sender == SENDER.org
        and case.audience == AUDIENCE
        and case.subject_id != ""
        and dt.timedelta(0) < expires - created <= MAX_VALIDITY
        and created <= NOW + CLOCK_SKEW
    )
    if not binding_holds:
        return EnvelopeError
    return ExpiredEnvelopeError if expires <= NOW else None


def _to_datetime(stamp: tuple[int, int]) -> dt.datetime:
    # Microseconds, as protobuf's ToDatetime truncates nanoseconds.
    seconds, nanos = stamp
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return epoch + dt.timedelta(seconds=seconds, microseconds=nanos // 1000)


def manifest_with(case: HeaderCase) -> batch_pb2.BatchManifest:
    manifest = batch_pb2.BatchManifest(county="500154", department="NYNC")
    header = manifest.header
    header.sender = case.sender
    header.audience = case.audience
    header.subject_id = case.subject_id
    header.key_id = case.key_id
    header.created_at.seconds, header.created_at.nanos = case.created_at
    header.expires_at.seconds, header.expires_at.nanos = case.expires_at
    return manifest


_BINDINGS = ("sender", "audience", "subject_id", "key_id")


@PROPERTY
@given(data=st.data())
def test_signed_payload_opens_exactly_when_its_header_binds_it(
    pki: Pki, data: st.DataObject
) -> None:
    key_id = pki.signer.key_id
    broken = data.draw(
        st.one_of(st.just(set()), st.sets(st.sampled_from(_BINDINGS), max_size=2)),
        label="broken",
    )
    wrong = {
        "sender": st.sampled_from(["500154-MZJ", "", SENDER.org + " "]),
        "audience": st.sampled_from(["CQRCB", "", "Gateway"]),
        "subject_id": st.just(""),
        "key_id": st.sampled_from([key_id[:-1] + "0", "", key_id.upper()]),
    }
    right = {
        "sender": SENDER.org,
        "audience": AUDIENCE,
        "subject_id": "batch-1",
        "key_id": key_id,
    }
    bindings = {
        name: data.draw(wrong[name], label=name) if name in broken else right[name]
        for name in _BINDINGS
    }
    now = int(NOW.timestamp())
    created = data.draw(
        st.one_of(
            st.tuples(
                st.integers(0, 3 * 86_400).map(lambda ago: now - ago), st.just(0)
            ),
            _timestamp_near_now(),
        ),
        label="created_at",
    )
    case = HeaderCase(
        **bindings,
        created_at=created,
        expires_at=data.draw(
            st.one_of(
                st.integers(3 * 86_400, int(MAX_VALIDITY.total_seconds())).map(
                    lambda d: (_representable(created[0] + d), created[1])
                ),
                st.integers(-3600, 8 * 86_400).map(
                    lambda d: (_representable(created[0] + d), created[1])
                ),
                _timestamp_near_now(),
            ),
            label="expires_at",
        ),
    )
    payload = manifest_with(case).SerializeToString()
    refusal = expected_refusal(case, key_id)

    event("opens" if refusal is None else f"refused: {refusal.__name__}")
    if refusal is None:
        opened = open_manifest(pki, sign(pki, payload))
        assert opened.payload == payload
        assert opened.signer == SENDER
        return
    with pytest.raises(GatewayError) as refused:
        open_manifest(pki, sign(pki, payload))
    assert type(refused.value) is refusal


@PROPERTY
@given(
    seconds=st.integers(-(2**63), 2**63 - 1),
    nanos=st.integers(-(2**31), 2**31 - 1),
)
@example(seconds=2**62, nanos=0)
def test_any_header_time_gives_only_gateway_errors(
    pki: Pki, seconds: int, nanos: int
) -> None:
    case = HeaderCase(
        sender=SENDER.org,
        audience=AUDIENCE,
        subject_id="batch-1",
        key_id=pki.signer.key_id,
        created_at=(int(NOW.timestamp()) - 60, 0),
        expires_at=(seconds, nanos),
    )
    envelope = sign(pki, manifest_with(case).SerializeToString())

    try:
        open_manifest(pki, envelope)
    except GatewayError:
        return


# --- acknowledgements ------------------------------------------------------

_ACK_NAMES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}", fullmatch=True).filter(
    lambda name: not name.endswith((".sig", ".tmp"))
)


@PROPERTY
@given(data=st.binary(max_size=400))
def test_decode_ack_of_arbitrary_bytes_raises_only_value_error(data: bytes) -> None:
    try:
        name, digest = decode_ack(data)
    except ValueError:
        return

    assert data == f"{name}\n{digest}\n".encode("ascii")


@PROPERTY
@given(
    name=_ACK_NAMES,
    content=st.binary(max_size=64),
    # Bytes that cannot start a name, or a byte-order mark, or nothing.
    before=st.sampled_from([b"", b"\n", b" ", codecs.BOM_UTF8, b"../", b"/"]),
    after=st.binary(max_size=4),
)
def test_decode_ack_takes_exactly_what_encode_ack_writes(
    name: str, content: bytes, before: bytes, after: bytes
) -> None:
    ack = encode_ack(name, content)

    assert decode_ack(ack) == (name, hashlib.sha256(content).hexdigest())
    if before or after:
        with pytest.raises(ValueError, match="malformed"):
            decode_ack(before + ack + after)
