"""pain.001 out, pain.002 back: schema validity, splitting, status mapping."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import sepaxml
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from connectors import iso20022 as iso
from gateway.reasons import BANK_CODES, ISO20022, ReasonCode
from tests.fakes import people
from ykt.v1 import exchange_pb2

NOW = dt.datetime(2026, 3, 2, 1, 30, tzinfo=dt.UTC)
XSD = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.09.xsd"
NS1 = {"p": iso.PAIN001_NS}
DEBTOR = iso.Debtor("开州区财政局补贴专户", "3100000000000000009", "CQRCB")
LONG_BATCH = "500154-NYNC-CQ-NY-001-2026-supplement-0042"


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


def instructions(count: int, batch: str = LONG_BATCH) -> list[exchange_pb2.Instruction]:
    return [
        exchange_pb2.Instruction(
            instruction_id=f"{batch}.r{row}",
            payee_name=person.name,
            account_number=person.account,
            amount_fen=row * 1001,
        )
        for row, person in enumerate(people(count, seed=5), start=1)
    ]


def pain001(items: list[exchange_pb2.Instruction]) -> bytes:
    out = io.BytesIO()
    iso.write_pain001(
        out,
        items,
        message_id="set-1.p0",
        payment_information_id="set-1.p0",
        created_at=NOW,
        execution_date=dt.date(2026, 3, 2),
        debtor=DEBTOR,
        initiating_party="ykt gateway",
        remittance="耕地地力保护补贴",
    )
    return out.getvalue()


def status(
    e2e: str,
    result: exchange_pb2.ResultStatus.ValueType,
    reason: str = "",
) -> iso.TransactionStatus:
    return iso.TransactionStatus(e2e, result, reason, "REF-1", NOW)


def pain002(statuses: list[iso.TransactionStatus]) -> bytes:
    out = io.BytesIO()
    iso.write_pain002(
        out,
        statuses,
        message_id="STS-1",
        created_at=NOW,
        original_message_id="set-1.p0",
        original_payment_information_id="set-1.p0",
    )
    return out.getvalue()


def report_xml(transactions: str, *, group: str = "", payment: str = "") -> bytes:
    """A hand-written pain.002 around the given TxInfAndSts elements."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<Document xmlns="{iso.PAIN002_NS}"><CstmrPmtStsRpt>'
        "<GrpHdr><MsgId>STS-9</MsgId><CreDtTm>2026-03-02T10:00:00</CreDtTm></GrpHdr>"
        "<OrgnlGrpInfAndSts><OrgnlMsgId>set-1.p0</OrgnlMsgId>"
        f"<OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>{group}</OrgnlGrpInfAndSts>"
        "<OrgnlPmtInfAndSts><OrgnlPmtInfId>set-1.p0</OrgnlPmtInfId>"
        f"{payment}{transactions}</OrgnlPmtInfAndSts>"
        "</CstmrPmtStsRpt></Document>"
    ).encode()


def tx(e2e: str, sts: str, inner: str = "") -> str:
    return (
        f"<TxInfAndSts><OrgnlEndToEndId>{e2e}</OrgnlEndToEndId>"
        f"<TxSts>{sts}</TxSts>{inner}</TxInfAndSts>"
    )


INDEX = {"E1": "batch.r1", "E2": "batch.r2"}


# -- identifiers and amounts ---------------------------------------------------


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (0, "0.00"),
        (5, "0.05"),
        (100, "1.00"),
        (123456, "1234.56"),
        (10**15, f"{10**13}.00"),
    ],
)
def test_yuan_text_is_exact_from_integer_fen(fen: int, text: str) -> None:
    assert iso.yuan_text(fen) == text
    assert iso.fen_from_yuan_text(text) == fen


@pytest.mark.parametrize("text", ["1.234", "1,00", "-1.00", "1e2", "", ".5", "１.00"])
def test_malformed_yuan_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="amount"):
        iso.fen_from_yuan_text(text)


def test_short_ids_are_kept_and_long_ids_become_35_characters() -> None:
    short = "b.r1"
    long = f"{LONG_BATCH}.r12345"

    assert iso.end_to_end_id(short) == short
    assert iso.end_to_end_id("x" * 34) == "x" * 34
    assert len(iso.end_to_end_id(long)) == 35
    assert len(iso.end_to_end_id("x" * 35)) == 35
    assert iso.end_to_end_id("x" * 35) != "x" * 35
    assert iso.end_to_end_id(long) == iso.end_to_end_id(long)
    assert iso.end_to_end_id(long) != iso.end_to_end_id(long + "0")


def test_end_to_end_index_maps_back() -> None:
    ids = [i.instruction_id for i in instructions(5)]

    index = iso.end_to_end_index(ids)

    assert sorted(index.values()) == sorted(ids)
    assert all(index[iso.end_to_end_id(i)] == i for i in ids)


# -- pain.001 -------------------------------------------------------------------


def test_pain001_validates_against_the_xsd(schema: etree.XMLSchema) -> None:
    document = etree.fromstring(pain001(instructions(3)))

    assert schema.validate(document), schema.error_log


def test_pain001_content(schema: etree.XMLSchema) -> None:
    items = instructions(3)
    document = etree.fromstring(pain001(items))

    assert (
        document.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs", namespaces=NS1)
        == "3"
    )
    assert document.findtext(
        "p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=NS1
    ) == iso.yuan_text(sum(i.amount_fen for i in items))
    amounts = document.findall(".//p:InstdAmt", namespaces=NS1)
    assert [a.get("Ccy") for a in amounts] == ["CNY"] * 3
    assert [a.text for a in amounts] == ["10.01", "20.02", "30.03"]
    e2e = [e.text for e in document.findall(".//p:EndToEndId", namespaces=NS1)]
    assert e2e == [iso.end_to_end_id(i.instruction_id) for i in items]
    assert all(len(e) <= 35 for e in e2e if e)
    debtor = document.findtext(".//p:DbtrAcct/p:Id/p:Othr/p:Id", namespaces=NS1)
    assert debtor == DEBTOR.account
    creditors = document.findall(".//p:CdtrAcct/p:Id/p:Othr/p:Id", namespaces=NS1)
    assert [c.text for c in creditors] == [i.account_number for i in items]


def test_pain001_round_trips_through_the_bank_side_reader() -> None:
    items = instructions(4)

    contents = iso.read_pain001(io.BytesIO(pain001(items)))

    assert [t.amount_fen for t in contents.transfers] == [i.amount_fen for i in items]
    assert [t.creditor_name for t in contents.transfers] == [
        i.payee_name for i in items
    ]
    assert [t.end_to_end_id for t in contents.transfers] == [
        iso.end_to_end_id(i.instruction_id) for i in items
    ]
    assert contents.debtor_account == DEBTOR.account
    assert contents.payment_information_id == "set-1.p0"


def test_pain001_reader_refuses_a_wrong_control_sum() -> None:
    data = pain001(instructions(2)).replace(
        b"<CtrlSum>30.03</CtrlSum>", b"<CtrlSum>30.04</CtrlSum>", 1
    )

    with pytest.raises(iso.Iso20022FormatError, match="CtrlSum"):
        iso.read_pain001(io.BytesIO(data))


@pytest.mark.parametrize(
    ("field", "value"),
    [("account_number", "6" * 35), ("amount_fen", 0), ("payee_name", "")],
)
def test_pain001_refuses_what_the_schema_cannot_hold(field: str, value: object) -> None:
    items = instructions(2)
    setattr(items[1], field, value)

    with pytest.raises(iso.Iso20022EncodeError) as caught:
        pain001(items)

    assert caught.value.instruction_id == items[1].instruction_id


def test_split_into_bounded_files(schema: etree.XMLSchema) -> None:
    items = instructions(7)
    buffers: dict[int, io.BytesIO] = {}

    @contextlib.contextmanager
    def open_part(index: int) -> Iterator[io.BytesIO]:
        buffers[index] = io.BytesIO()
        yield buffers[index]

    parts = iso.write_pain001_files(
        iter(items),
        set_id=f"{LONG_BATCH}.i0",
        max_transactions=3,
        open_part=open_part,
        created_at=NOW,
        execution_date=dt.date(2026, 3, 2),
        debtor=DEBTOR,
        initiating_party="ykt gateway",
        remittance="耕地地力保护补贴",
    )

    assert [p.transactions for p in parts] == [3, 3, 1]
    assert sum(p.total_fen for p in parts) == sum(i.amount_fen for i in items)
    assert len({p.message_id for p in parts}) == 3
    seen: list[str] = []
    for index, part in enumerate(parts):
        document = etree.fromstring(buffers[index].getvalue())
        assert schema.validate(document), schema.error_log
        contents = iso.read_pain001(io.BytesIO(buffers[index].getvalue()))
        assert contents.message_id == part.message_id
        seen.extend(t.end_to_end_id for t in contents.transfers)
    assert seen == [iso.end_to_end_id(i.instruction_id) for i in items]


def test_split_refuses_a_zero_bound() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        list(iso.chunked(instructions(2), 0))


# -- pain.002 ----------------------------------------------------------------------


def test_status_mapping_including_the_return() -> None:
    items = instructions(4)
    e2e = [iso.end_to_end_id(i.instruction_id) for i in items]
    data = pain002(
        [
            status(e2e[0], exchange_pb2.RESULT_STATUS_PAID),
            status(e2e[1], exchange_pb2.RESULT_STATUS_FAILED, "ACCOUNT_FROZEN"),
            status(e2e[2], exchange_pb2.RESULT_STATUS_RETURNED, "ACCOUNT_CLOSED"),
            status(e2e[3], exchange_pb2.RESULT_STATUS_FAILED, "ACCOUNT_NOT_FOUND"),
        ]
    )

    report = iso.read_pain002(
        io.BytesIO(data),
        end_to_end_ids=iso.end_to_end_index(i.instruction_id for i in items),
    )

    assert [(r.instruction_id, r.status, r.reason_code) for r in report.results] == [
        (items[0].instruction_id, exchange_pb2.RESULT_STATUS_PAID, ""),
        (items[1].instruction_id, exchange_pb2.RESULT_STATUS_FAILED, "ACCOUNT_FROZEN"),
        (
            items[2].instruction_id,
            exchange_pb2.RESULT_STATUS_RETURNED,
            "ACCOUNT_CLOSED",
        ),
        (
            items[3].instruction_id,
            exchange_pb2.RESULT_STATUS_FAILED,
            "ACCOUNT_NOT_FOUND",
        ),
    ]
    assert all(r.bank_reference == "REF-1" for r in report.results)
    assert all(r.completed_at.ToDatetime(tzinfo=dt.UTC) == NOW for r in report.results)
    assert (report.message_id, report.original_message_id) == ("STS-1", "set-1.p0")


@pytest.mark.parametrize("code", sorted(BANK_CODES))
def test_bank_reason_codes_round_trip_through_iso(code: ReasonCode) -> None:
    data = pain002([status("E1", exchange_pb2.RESULT_STATUS_FAILED, code.value)])

    report = iso.read_pain002(io.BytesIO(data), end_to_end_ids=INDEX)

    assert ISO20022[code].encode() in data
    assert report.results[0].reason_code == code.value


@pytest.mark.parametrize("sts", ["ACSC", "ACCC", "ACCP"])
def test_paid_statuses(sts: str) -> None:
    report = iso.read_pain002(
        io.BytesIO(report_xml(tx("E1", sts))), end_to_end_ids=INDEX
    )

    assert report.results[0].status == exchange_pb2.RESULT_STATUS_PAID
    assert report.results[0].reason_code == ""


def test_alias_iso_codes_are_read_through_gateway_reasons() -> None:
    inner = "<StsRsnInf><Rsn><Cd>AC07</Cd></Rsn></StsRsnInf>"

    report = iso.read_pain002(
        io.BytesIO(report_xml(tx("E1", "RJCT", inner))), end_to_end_ids=INDEX
    )

    assert report.results[0].reason_code == "ACCOUNT_CLOSED"


def test_pending_statuses_are_listed_not_reported() -> None:
    data = report_xml(tx("E1", "ACSP") + tx("E2", "ACSC"))

    report = iso.read_pain002(io.BytesIO(data), end_to_end_ids=INDEX)

    assert report.pending == ["batch.r1"]
    assert [r.instruction_id for r in report.results] == ["batch.r2"]


def test_time_without_offset_is_china_time_and_accptncdttm_wins() -> None:
    inner = "<AccptncDtTm>2026-03-02T18:00:00+08:00</AccptncDtTm>"
    data = report_xml(tx("E1", "ACSC", inner) + tx("E2", "ACSC"))

    report = iso.read_pain002(io.BytesIO(data), end_to_end_ids=INDEX)

    times = [r.completed_at.ToDatetime(tzinfo=dt.UTC) for r in report.results]
    assert times == [
        dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC),
    ]


def _cases() -> dict[str, tuple[bytes, str]]:
    reason = "<StsRsnInf><Rsn><Cd>AC04</Cd></Rsn></StsRsnInf>"
    return {
        "unknown end-to-end id": (
            report_xml(tx("E9", "ACSC")),
            "unknown OrgnlEndToEndId",
        ),
        "missing end-to-end id": (
            report_xml("<TxInfAndSts><TxSts>ACSC</TxSts></TxInfAndSts>"),
            "OrgnlEndToEndId is missing",
        ),
        "unknown status": (report_xml(tx("E1", "XXXX")), "is not accepted"),
        "rejection without reason": (
            report_xml(tx("E1", "RJCT")),
            "exactly one Rsn/Cd",
        ),
        "rejection with two reasons": (
            report_xml(tx("E1", "RJCT", reason + reason)),
            "exactly one Rsn/Cd",
        ),
        "unmapped iso reason": (
            report_xml(
                tx("E1", "RJCT", "<StsRsnInf><Rsn><Cd>AM04</Cd></Rsn></StsRsnInf>")
            ),
            "has no reason code",
        ),
        "status twice": (
            report_xml(tx("E1", "ACSC", "<TxSts>RJCT</TxSts>")),
            "TxSts appears more than once",
        ),
        "bad time": (
            report_xml(tx("E1", "ACSC", "<AccptncDtTm>yesterday</AccptncDtTm>")),
            "AccptncDtTm is not a time",
        ),
        "wrong namespace": (
            report_xml(tx("E1", "ACSC")).replace(
                b"pain.002.001.10", b"pain.002.001.03"
            ),
            "root must be",
        ),
        "foreign element": (
            report_xml(tx("E1", "ACSC", '<x:Y xmlns:x="urn:other"/>')),
            "outside the message namespace",
        ),
        "wrong original message type": (
            report_xml(tx("E1", "ACSC")).replace(
                b"pain.001.001.09", b"pain.008.001.08"
            ),
            "original message must be",
        ),
        "group rejected without transactions": (
            report_xml("", group="<GrpSts>RJCT</GrpSts>"),
            "must list its transactions",
        ),
        "payment rejected without transactions": (
            report_xml("", payment="<PmtInfSts>RJCT</PmtInfSts>"),
            "must list its transactions",
        ),
        "doctype": (
            b'<?xml version="1.0"?><!DOCTYPE Document [<!ENTITY a "b">]>'
            + report_xml(tx("E1", "ACSC")).split(b"?>", 1)[1],
            "DOCTYPE",
        ),
        "external entity": (
            b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            b"<d>&e;</d>",
            "DOCTYPE",
        ),
        "not xml": (b"\x00\x01garbage", "not well-formed"),
        "empty": (b"", "not well-formed"),
        "truncated": (report_xml(tx("E1", "ACSC"))[:-20], "not well-formed"),
        "missing header": (
            report_xml(tx("E1", "ACSC")).replace(
                b"<GrpHdr><MsgId>STS-9</MsgId><CreDtTm>2026-03-02T10:00:00</CreDtTm></GrpHdr>",
                b"",
            ),
            "before GrpHdr",
        ),
    }


@pytest.mark.parametrize("case", sorted(_cases()))
def test_pain002_strict_reading_refuses(case: str) -> None:
    data, problem = _cases()[case]

    with pytest.raises(iso.Iso20022FormatError, match=problem):
        iso.read_pain002(io.BytesIO(data), end_to_end_ids=INDEX)


def test_pain002_errors_name_no_personal_data() -> None:
    data = report_xml(
        "<TxInfAndSts><OrgnlEndToEndId>E1</OrgnlEndToEndId><TxSts>RJCT</TxSts>"
        "<OrgnlTxRef><Cdtr><Pty><Nm>赵伟</Nm></Pty></Cdtr></OrgnlTxRef></TxInfAndSts>"
    )

    with pytest.raises(iso.Iso20022FormatError) as caught:
        iso.read_pain002(io.BytesIO(data), end_to_end_ids=INDEX)

    assert "赵伟" not in str(caught.value)
    assert "transaction 1" in str(caught.value)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_pain002_reader_on_arbitrary_bytes_gives_only_its_error(data: bytes) -> None:
    with contextlib.suppress(iso.Iso20022FormatError):
        iso.read_pain002(io.BytesIO(data), end_to_end_ids=INDEX)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_pain002_reader_on_mutated_reports_gives_only_its_error(
    data: st.DataObject,
) -> None:
    good = report_xml(
        tx("E1", "ACSC")
        + tx("E2", "RJCT", "<StsRsnInf><Rsn><Cd>AC04</Cd></Rsn></StsRsnInf>")
    )
    position = data.draw(st.integers(0, len(good) - 1))
    replacement = data.draw(st.binary(min_size=1, max_size=3))
    mutated = good[:position] + replacement + good[position + len(replacement) :]

    try:
        report = iso.read_pain002(io.BytesIO(mutated), end_to_end_ids=INDEX)
    except iso.Iso20022FormatError:
        return
    assert len(report.results) + len(report.pending) <= 2
