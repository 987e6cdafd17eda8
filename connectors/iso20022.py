"""ISO 20022 files: pain.001.001.09 instructions out, pain.002.001.10 status back.

For agent banks that speak ISO 20022, an instruction set becomes one or more
CustomerCreditTransferInitiation (pain.001.001.09) files, and the bank
answers with CustomerPaymentStatusReport (pain.002.001.10) files. The bank
side's halves (read pain.001, write pain.002) are here too, for the bank
simulator and the tests.

Mapping (``docs/connectors.md`` has the full table):
  * One pain.001 file holds one PmtInf with at most ``max_transactions``
    CdtTrfTxInf. Debtor is the agent bank's payout account for the policy
    (a parameter, ``Debtor``); creditor is the payee and the one-card account.
  * Currency CNY. Amounts are yuan with exactly two decimals, made from
    integer fen by integer division; no float is ever involved.
  * EndToEndId carries the instruction id. ISO caps it at 35 characters and
    our instruction ids (``<batch id>.r<row>``) may be longer, so
    ``end_to_end_id`` keeps an id of at most 34 characters as it is and turns
    a longer one into exactly 35 characters: ``E`` and 34 base32 characters
    of its SHA-256. The lengths never meet, so a kept id and a digest can
    never be equal. The reader maps EndToEndIds back through an index of the
    instruction ids the caller expects (``end_to_end_index``); an EndToEndId
    outside the index is an error. Message and PmtInf ids use the same rule.
  * pain.002 transaction status: ACSC, ACCC and ACCP are PAID (by agreement
    the bank sends ACCP only once the credit is made); RJCT is FAILED, with
    the reason from StsRsnInf/Rsn/Cd mapped through ``gateway.reasons``; RCVD,
    ACTC, ACSP and PDNG are not final and are listed in ``pending``; any other
    status is an error.
  * Returns (Art. 22): a cross-bank credit refunded after it was paid arrives
    as a later pain.002 for the same original message, with TxSts RJCT, the
    return reason in Rsn/Cd, and an AddtlInf that is exactly ``RETURN`` in
    the same StsRsnInf. The reader turns that into RETURNED. We chose this
    over camt.054 so that one reader and one signature scheme cover every
    result a bank reports.
  * completed_at is AccptncDtTm, or the report's CreDtTm where the bank
    leaves it out. A time without an offset is China Standard Time (UTC+8).

sepaxml ships no XSD for any pain.002 version, so the pain.002 reader checks
the structure it relies on itself: namespace, root, mandatory elements,
single-valued elements appearing once, text lengths. pain.001 output is
validated against the XSD in the tests.
TODO: validate incoming pain.002 against the official pain.002.001.10 XSD as
well, once the project ships that schema file; the checks here would stay.

Threats:
  * XML attacks: parsing uses lxml iterparse with entity resolution, network
    access, DTD loading and huge trees off, and refuses any document with a
    DOCTYPE. Elements are cleared as soon as they are read, so a large file
    is never held whole.
  * Personal data in errors: ``Iso20022FormatError`` names transaction
    positions, element names, statuses and ISO codes; never names, accounts
    or amounts.
  * A bank reporting on what it was never sent: the EndToEndId index refuses
    it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import IO, Any

from lxml import etree  # type: ignore[import-untyped]

from gateway.errors import InvalidArgumentError
from gateway.reasons import ISO20022, ReasonCode, from_iso20022
from ykt.v1 import exchange_pb2

PAIN001 = "pain.001.001.09"
PAIN002 = "pain.002.001.10"
PAIN001_NS = f"urn:iso:std:iso:20022:tech:xsd:{PAIN001}"
PAIN002_NS = f"urn:iso:std:iso:20022:tech:xsd:{PAIN002}"
CURRENCY = "CNY"
MAX_ID = 35
MAX_ACCOUNT = 34
MAX_NAME = 140
CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "CST")

# The marker in StsRsnInf/AddtlInf that makes an RJCT a return.
RETURN_MARKER = "RETURN"

PAID_STATUSES = frozenset({"ACSC", "ACCC", "ACCP"})
FAILED_STATUSES = frozenset({"RJCT"})
PENDING_STATUSES = frozenset({"RCVD", "ACTC", "ACSP", "PDNG"})

_ISO_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?\Z",
    re.ASCII,
)
_AMOUNT = re.compile(r"^(\d{1,16})(?:\.(\d{1,2}))?\Z", re.ASCII)


class Iso20022FormatError(InvalidArgumentError):
    """An ISO 20022 file is malformed or says something we cannot accept."""


class Iso20022EncodeError(InvalidArgumentError):
    """An instruction cannot be written. Names the instruction id only."""

    def __init__(self, instruction_id: str, problem: str) -> None:
        super().__init__(f"instruction {instruction_id}: {problem}")
        self.instruction_id = instruction_id


# -- identifiers and amounts -------------------------------------------------


def end_to_end_id(identifier: str) -> str:
    """An id of at most 35 characters for ``identifier``; see the module doc."""
    if len(identifier) < MAX_ID:
        return identifier
    digest = base64.b32encode(hashlib.sha256(identifier.encode("utf-8")).digest())
    return "E" + digest.decode("ascii")[: MAX_ID - 1]


def end_to_end_index(instruction_ids: Iterable[str]) -> dict[str, str]:
    """EndToEndId -> instruction id, for the reader. Refuses a collision."""
    index: dict[str, str] = {}
    for instruction_id in instruction_ids:
        key = end_to_end_id(instruction_id)
        held = index.setdefault(key, instruction_id)
        if held != instruction_id:
            raise ValueError(f"instruction ids {held} and {instruction_id} collide")
    return index


def yuan_text(amount_fen: int) -> str:
    """``12345`` fen -> ``"123.45"``: integer arithmetic only."""
    if amount_fen < 0:
        raise ValueError("amount must not be negative")
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


def fen_from_yuan_text(text: str) -> int:
    """``"123.45"`` -> ``12345``; at most two decimals, no float."""
    match = _AMOUNT.match(text)
    if match is None:
        raise ValueError("not an amount with at most two decimals")
    return int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))


def iso_time(moment: dt.datetime) -> str:
    """An ISODateTime in China Standard Time with its offset, to the second."""
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(CHINA_TZ).replace(microsecond=0).isoformat()


def _parse_time(text: str) -> dt.datetime:
    if not _ISO_TIME.match(text):
        raise ValueError("not an ISODateTime")
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CHINA_TZ)
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:
        # The first or last hours of the calendar have no UTC equivalent.
        raise ValueError("not a representable time") from None


# -- pain.001 writer ---------------------------------------------------------


@dataclass(frozen=True)
class Debtor:
    """Who pays: the agent bank's payout account for the policy."""

    name: str
    account: str
    agent_code: str


@dataclass(frozen=True)
class Pain001Part:
    """What one written pain.001 file holds."""

    index: int
    message_id: str
    payment_information_id: str
    transactions: int
    total_fen: int


def _q(namespace: str, tag: str) -> str:
    return f"{{{namespace}}}{tag}"


class _Writer:
    """Small helpers over ``etree.xmlfile`` for one namespace."""

    def __init__(self, xf: Any, namespace: str) -> None:
        self._xf = xf
        self._ns = namespace

    def element(self, tag: str, **attributes: str) -> AbstractContextManager[Any]:
        return self._xf.element(_q(self._ns, tag), attributes)  # type: ignore[no-any-return]

    def leaf(self, tag: str, text: str, **attributes: str) -> None:
        with self.element(tag, **attributes):
            self._xf.write(text)

    def newline(self) -> None:
        self._xf.write("\n")


def _check_for_pain001(instruction: exchange_pb2.Instruction) -> None:
    iid = instruction.instruction_id
    if not iid:
        raise Iso20022EncodeError("(empty id)", "instruction id is empty")
    if instruction.amount_fen <= 0:
        raise Iso20022EncodeError(iid, "amount must be positive")
    if not 0 < len(instruction.account_number) <= MAX_ACCOUNT:
        raise Iso20022EncodeError(iid, "account number is empty or too long")
    if not 0 < len(instruction.payee_name) <= MAX_NAME:
        raise Iso20022EncodeError(iid, "payee name is empty or too long")


def write_pain001(
    out: IO[bytes],
    instructions: Sequence[exchange_pb2.Instruction],
    *,
    message_id: str,
    payment_information_id: str,
    created_at: dt.datetime,
    execution_date: dt.date,
    debtor: Debtor,
    initiating_party: str,
    remittance: str,
    index: int = 0,
) -> Pain001Part:
    """Write one pain.001.001.09 file for ``instructions``, element by element.

    The group header needs the count and control sum before the
    transactions, so the caller passes one bounded part (see
    ``write_pain001_files``), not an unbounded stream.
    """
    for instruction in instructions:
        _check_for_pain001(instruction)
    count = len(instructions)
    total = sum(i.amount_fen for i in instructions)
    message_id = end_to_end_id(message_id)
    payment_information_id = end_to_end_id(payment_information_id)

    with etree.xmlfile(out, encoding="UTF-8") as xf:
        xf.write_declaration()
        with xf.element(_q(PAIN001_NS, "Document"), nsmap={None: PAIN001_NS}):
            w = _Writer(xf, PAIN001_NS)
            with w.element("CstmrCdtTrfInitn"):
                w.newline()
                with w.element("GrpHdr"):
                    w.leaf("MsgId", message_id)
                    w.leaf("CreDtTm", iso_time(created_at))
                    w.leaf("NbOfTxs", str(count))
                    w.leaf("CtrlSum", yuan_text(total))
                    with w.element("InitgPty"):
                        w.leaf("Nm", initiating_party)
                w.newline()
                with w.element("PmtInf"):
                    w.leaf("PmtInfId", payment_information_id)
                    w.leaf("PmtMtd", "TRF")
                    w.leaf("NbOfTxs", str(count))
                    w.leaf("CtrlSum", yuan_text(total))
                    with w.element("ReqdExctnDt"):
                        w.leaf("Dt", execution_date.isoformat())
                    with w.element("Dbtr"):
                        w.leaf("Nm", debtor.name)
                    with w.element("DbtrAcct"), w.element("Id"), w.element("Othr"):
                        w.leaf("Id", debtor.account)
                    with (
                        w.element("DbtrAgt"),
                        w.element("FinInstnId"),
                        w.element("Othr"),
                    ):
                        w.leaf("Id", debtor.agent_code)
                    w.newline()
                    for instruction in instructions:
                        _write_transaction(w, instruction, remittance)
                        w.newline()
                w.newline()
    out.write(b"\n")
    return Pain001Part(index, message_id, payment_information_id, count, total)


def _write_transaction(
    w: _Writer, instruction: exchange_pb2.Instruction, remittance: str
) -> None:
    with w.element("CdtTrfTxInf"):
        with w.element("PmtId"):
            w.leaf("EndToEndId", end_to_end_id(instruction.instruction_id))
        with w.element("Amt"):
            w.leaf("InstdAmt", yuan_text(instruction.amount_fen), Ccy=CURRENCY)
        with w.element("Cdtr"):
            w.leaf("Nm", instruction.payee_name)
        with w.element("CdtrAcct"), w.element("Id"), w.element("Othr"):
            w.leaf("Id", instruction.account_number)
        if remittance:
            with w.element("RmtInf"):
                w.leaf("Ustrd", remittance[:MAX_NAME])


def chunked(
    items: Iterable[exchange_pb2.Instruction], size: int
) -> Iterator[list[exchange_pb2.Instruction]]:
    """Consecutive lists of at most ``size`` items; never an empty list."""
    if size < 1:
        raise ValueError("size must be at least 1")
    part: list[exchange_pb2.Instruction] = []
    for item in items:
        part.append(item)
        if len(part) == size:
            yield part
            part = []
    if part:
        yield part


def write_pain001_files(
    instructions: Iterable[exchange_pb2.Instruction],
    *,
    set_id: str,
    max_transactions: int,
    open_part: Callable[[int], AbstractContextManager[IO[bytes]]],
    created_at: dt.datetime,
    execution_date: dt.date,
    debtor: Debtor,
    initiating_party: str,
    remittance: str,
) -> list[Pain001Part]:
    """Split a set into pain.001 files of at most ``max_transactions`` each.

    Part ``n`` (from 0) is written to ``open_part(n)``; its message id is
    ``<set id>.p<n>``, shortened by ``end_to_end_id`` if needed. At most one
    part's instructions are held in memory.
    """
    parts: list[Pain001Part] = []
    for index, part in enumerate(chunked(instructions, max_transactions)):
        with open_part(index) as out:
            parts.append(
                write_pain001(
                    out,
                    part,
                    message_id=f"{set_id}.p{index}",
                    payment_information_id=f"{set_id}.p{index}",
                    created_at=created_at,
                    execution_date=execution_date,
                    debtor=debtor,
                    initiating_party=initiating_party,
                    remittance=remittance,
                    index=index,
                )
            )
    return parts


# -- hardened streaming parse -------------------------------------------------


def _events(source: IO[bytes], namespace: str, root: str) -> Iterator[tuple[str, Any]]:
    """(event, element) pairs; refuses DTDs, foreign namespaces, a wrong root."""
    context = etree.iterparse(
        source,
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    first = True
    try:
        for event, element in context:
            if first:
                first = False
                if element.getroottree().docinfo.doctype:
                    raise Iso20022FormatError("a DOCTYPE is not allowed")
                if element.tag != _q(namespace, root):
                    raise Iso20022FormatError(f"the root must be {root} in {namespace}")
            if not isinstance(element.tag, str) or not element.tag.startswith(
                "{" + namespace + "}"
            ):
                raise Iso20022FormatError("an element outside the message namespace")
            yield event, element
    except etree.LxmlError as exc:
        raise Iso20022FormatError("the file is not well-formed XML") from exc
    except (ValueError, LookupError) as exc:
        raise Iso20022FormatError("the file cannot be read as XML") from exc
    if first:
        raise Iso20022FormatError("the file holds no XML element")


class _Element:
    """Checked access to the children of one parsed element."""

    def __init__(self, element: Any, namespace: str, where: str) -> None:
        self._element = element
        self._ns = namespace
        self.where = where

    def all(self, path: str) -> list[Any]:
        return list(self._element.iterfind(self._path(path)))

    def _path(self, path: str) -> str:
        return "/".join(_q(self._ns, part) for part in path.split("/"))

    def text(self, path: str, *, required: bool, max_length: int = MAX_ID) -> str:
        found = self.all(path)
        if len(found) > 1:
            raise Iso20022FormatError(f"{self.where}: {path} appears more than once")
        if not found:
            if required:
                raise Iso20022FormatError(f"{self.where}: {path} is missing")
            return ""
        if len(found[0]):
            raise Iso20022FormatError(f"{self.where}: {path} must hold text")
        value = (found[0].text or "").strip()
        if required and not value:
            raise Iso20022FormatError(f"{self.where}: {path} is empty")
        if len(value) > max_length:
            raise Iso20022FormatError(f"{self.where}: {path} is too long")
        return value


def _release(element: Any) -> None:
    """Free a finished element and the finished siblings of its kind before it.

    Siblings of other kinds (such as OrgnlPmtInfId before the transactions)
    stay until their parent ends, which reads them.
    """
    element.clear()
    parent = element.getparent()
    if parent is None:
        return
    previous = element.getprevious()
    while previous is not None and previous.tag == element.tag:
        parent.remove(previous)
        previous = element.getprevious()


# -- pain.002 reader ---------------------------------------------------------


@dataclass
class StatusReport:
    """What one pain.002 file reports. ``results`` hold our instruction ids."""

    message_id: str
    original_message_id: str
    results: list[exchange_pb2.Result] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)


def read_pain002(
    source: IO[bytes], *, end_to_end_ids: Mapping[str, str]
) -> StatusReport:
    """Read a pain.002.001.10 status report, streaming.

    ``end_to_end_ids`` maps each EndToEndId the bank may report on to our
    instruction id (``end_to_end_index``). Raises ``Iso20022FormatError`` on
    anything it cannot accept; nothing is skipped.
    """
    report = StatusReport("", "")
    created_at: dt.datetime | None = None
    position = 0
    rejected_groups: list[str] = []
    header_tag = _q(PAIN002_NS, "GrpHdr")
    group_tag = _q(PAIN002_NS, "OrgnlGrpInfAndSts")
    payment_tag = _q(PAIN002_NS, "OrgnlPmtInfAndSts")
    transaction_tag = _q(PAIN002_NS, "TxInfAndSts")
    transactions_in_payment = 0

    for event, element in _events(source, PAIN002_NS, "Document"):
        if event == "start":
            if element.tag == payment_tag:
                transactions_in_payment = 0
            continue

        if element.tag == header_tag:
            header = _Element(element, PAIN002_NS, "GrpHdr")
            report.message_id = header.text("MsgId", required=True)
            created_at = _time_of(header, "CreDtTm", required=True)
            _release(element)
        elif element.tag == group_tag:
            group = _Element(element, PAIN002_NS, "OrgnlGrpInfAndSts")
            report.original_message_id = group.text("OrgnlMsgId", required=True)
            if group.text("OrgnlMsgNmId", required=True) != PAIN001:
                raise Iso20022FormatError(
                    f"OrgnlGrpInfAndSts: the original message must be {PAIN001}"
                )
            if group.text("GrpSts", required=False) == "RJCT":
                rejected_groups.append("OrgnlGrpInfAndSts")
            _release(element)
        elif element.tag == transaction_tag:
            position += 1
            transactions_in_payment += 1
            if created_at is None:
                raise Iso20022FormatError("TxInfAndSts before GrpHdr")
            _read_transaction(
                _Element(element, PAIN002_NS, f"transaction {position}"),
                end_to_end_ids,
                created_at,
                report,
            )
            _release(element)
        elif element.tag == payment_tag:
            payment = _Element(element, PAIN002_NS, "OrgnlPmtInfAndSts")
            payment.text("OrgnlPmtInfId", required=True)
            status = payment.text("PmtInfSts", required=False)
            if status == "RJCT" and transactions_in_payment == 0:
                raise Iso20022FormatError(
                    "OrgnlPmtInfAndSts: a rejected payment must list its transactions"
                )
            _release(element)

    if not report.message_id or created_at is None:
        raise Iso20022FormatError("GrpHdr is missing")
    if not report.original_message_id:
        raise Iso20022FormatError("OrgnlGrpInfAndSts is missing")
    if rejected_groups and position == 0:
        raise Iso20022FormatError(
            "OrgnlGrpInfAndSts: a rejected message must list its transactions"
        )
    return report


def _time_of(element: _Element, path: str, *, required: bool) -> dt.datetime | None:
    text = element.text(path, required=required)
    if not text:
        return None
    try:
        return _parse_time(text)
    except ValueError:
        raise Iso20022FormatError(f"{element.where}: {path} is not a time") from None


def _read_transaction(
    tx: _Element,
    end_to_end_ids: Mapping[str, str],
    report_created_at: dt.datetime,
    report: StatusReport,
) -> None:
    e2e = tx.text("OrgnlEndToEndId", required=True)
    instruction_id = end_to_end_ids.get(e2e)
    if instruction_id is None:
        raise Iso20022FormatError(f"{tx.where}: unknown OrgnlEndToEndId")
    status = tx.text("TxSts", required=True)

    if status in PENDING_STATUSES:
        report.pending.append(instruction_id)
        return

    completed_at = _time_of(tx, "AccptncDtTm", required=False) or report_created_at
    result = exchange_pb2.Result(
        instruction_id=instruction_id,
        bank_reference=tx.text("AcctSvcrRef", required=False),
    )
    result.completed_at.FromDatetime(completed_at)

    if status in PAID_STATUSES:
        result.status = exchange_pb2.RESULT_STATUS_PAID
    elif status in FAILED_STATUSES:
        reason, returned = _reason(tx)
        result.reason_code = reason.value
        result.status = (
            exchange_pb2.RESULT_STATUS_RETURNED
            if returned
            else exchange_pb2.RESULT_STATUS_FAILED
        )
    else:
        raise Iso20022FormatError(f"{tx.where}: TxSts {status[:4]!r} is not accepted")
    report.results.append(result)


def _reason(tx: _Element) -> tuple[ReasonCode, bool]:
    """The reason code of a rejection, and whether it is a return."""
    codes: list[str] = []
    returned = False
    for info in tx.all("StsRsnInf"):
        info_element = _Element(info, PAIN002_NS, tx.where)
        code = info_element.text("Rsn/Cd", required=False, max_length=4)
        if code:
            codes.append(code)
        for note in info_element.all("AddtlInf"):
            if (note.text or "").strip() == RETURN_MARKER:
                returned = True
    if len(codes) != 1:
        raise Iso20022FormatError(f"{tx.where}: RJCT needs exactly one Rsn/Cd")
    reason = from_iso20022(codes[0])
    if reason is None:
        raise Iso20022FormatError(
            f"{tx.where}: status reason {codes[0]!r} has no reason code"
        )
    return reason, returned


# -- bank side: pain.001 reader, pain.002 writer ----------------------------


@dataclass(frozen=True)
class CreditTransfer:
    """One CdtTrfTxInf as the bank reads it; it knows EndToEndIds, not our ids."""

    end_to_end_id: str
    creditor_name: str
    creditor_account: str
    amount_fen: int


@dataclass
class Pain001Contents:
    message_id: str
    payment_information_id: str
    debtor_account: str
    transfers: list[CreditTransfer] = field(default_factory=list)


def read_pain001(source: IO[bytes]) -> Pain001Contents:
    """Read a pain.001.001.09 file as a bank would, checking count and sum."""
    contents = Pain001Contents("", "", "")
    declared: tuple[int, int] | None = None
    transfer_tag = _q(PAIN001_NS, "CdtTrfTxInf")
    header_tag = _q(PAIN001_NS, "GrpHdr")
    payment_tag = _q(PAIN001_NS, "PmtInf")
    payments = 0

    for event, element in _events(source, PAIN001_NS, "Document"):
        if event == "start":
            if element.tag == payment_tag:
                payments += 1
                if payments > 1:
                    raise Iso20022FormatError("more than one PmtInf")
            continue

        if element.tag == header_tag:
            header = _Element(element, PAIN001_NS, "GrpHdr")
            contents.message_id = header.text("MsgId", required=True)
            declared = (
                _count(header.text("NbOfTxs", required=True), "GrpHdr"),
                _fen(header.text("CtrlSum", required=True), "GrpHdr"),
            )
            _release(element)
        elif element.tag == transfer_tag:
            tx = _Element(
                element, PAIN001_NS, f"transaction {len(contents.transfers) + 1}"
            )
            amount = tx.all("Amt/InstdAmt")
            if len(amount) != 1 or amount[0].get("Ccy") != CURRENCY:
                raise Iso20022FormatError(f"{tx.where}: one InstdAmt in CNY needed")
            contents.transfers.append(
                CreditTransfer(
                    end_to_end_id=tx.text("PmtId/EndToEndId", required=True),
                    creditor_name=tx.text("Cdtr/Nm", required=True, max_length=140),
                    creditor_account=tx.text(
                        "CdtrAcct/Id/Othr/Id", required=True, max_length=MAX_ACCOUNT
                    ),
                    amount_fen=_fen(tx.text("Amt/InstdAmt", required=True), tx.where),
                )
            )
            _release(element)
        elif element.tag == payment_tag:
            payment = _Element(element, PAIN001_NS, "PmtInf")
            contents.payment_information_id = payment.text("PmtInfId", required=True)
            contents.debtor_account = payment.text(
                "DbtrAcct/Id/Othr/Id", required=True, max_length=MAX_ACCOUNT
            )

    if declared is None:
        raise Iso20022FormatError("GrpHdr is missing")
    actual = (len(contents.transfers), sum(t.amount_fen for t in contents.transfers))
    if actual != declared:
        raise Iso20022FormatError("GrpHdr NbOfTxs or CtrlSum does not match")
    return contents


def _count(text: str, where: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 15:
        raise Iso20022FormatError(f"{where}: NbOfTxs is not a count")
    return int(text)


def _fen(text: str, where: str) -> int:
    try:
        return fen_from_yuan_text(text)
    except ValueError:
        raise Iso20022FormatError(f"{where}: not an amount in yuan") from None


@dataclass(frozen=True)
class TransactionStatus:
    """One transaction's status as the bank reports it."""

    end_to_end_id: str
    status: exchange_pb2.ResultStatus.ValueType
    reason_code: str
    bank_reference: str
    completed_at: dt.datetime


def write_pain002(
    out: IO[bytes],
    statuses: Iterable[TransactionStatus],
    *,
    message_id: str,
    created_at: dt.datetime,
    original_message_id: str,
    original_payment_information_id: str,
) -> int:
    """Write a pain.002.001.10 report, element by element; return the count.

    PAID -> ACSC; FAILED -> RJCT with the reason's ISO code; RETURNED -> RJCT
    with the reason's ISO code and the ``RETURN`` marker.
    """
    count = 0
    with etree.xmlfile(out, encoding="UTF-8") as xf:
        xf.write_declaration()
        with xf.element(_q(PAIN002_NS, "Document"), nsmap={None: PAIN002_NS}):
            w = _Writer(xf, PAIN002_NS)
            with w.element("CstmrPmtStsRpt"):
                w.newline()
                with w.element("GrpHdr"):
                    w.leaf("MsgId", end_to_end_id(message_id))
                    w.leaf("CreDtTm", iso_time(created_at))
                w.newline()
                with w.element("OrgnlGrpInfAndSts"):
                    w.leaf("OrgnlMsgId", end_to_end_id(original_message_id))
                    w.leaf("OrgnlMsgNmId", PAIN001)
                w.newline()
                with w.element("OrgnlPmtInfAndSts"):
                    w.leaf(
                        "OrgnlPmtInfId", end_to_end_id(original_payment_information_id)
                    )
                    w.newline()
                    for status in statuses:
                        _write_status(w, status)
                        w.newline()
                        count += 1
                w.newline()
    out.write(b"\n")
    return count


def _write_status(w: _Writer, status: TransactionStatus) -> None:
    if status.status == exchange_pb2.RESULT_STATUS_PAID:
        code, iso_reason = "ACSC", ""
    elif status.status in (
        exchange_pb2.RESULT_STATUS_FAILED,
        exchange_pb2.RESULT_STATUS_RETURNED,
    ):
        code, iso_reason = "RJCT", ISO20022[ReasonCode(status.reason_code)]
    else:
        raise ValueError("a status must be PAID, FAILED or RETURNED")

    with w.element("TxInfAndSts"):
        w.leaf("OrgnlEndToEndId", status.end_to_end_id)
        w.leaf("TxSts", code)
        if iso_reason:
            with w.element("StsRsnInf"):
                with w.element("Rsn"):
                    w.leaf("Cd", iso_reason)
                if status.status == exchange_pb2.RESULT_STATUS_RETURNED:
                    w.leaf("AddtlInf", RETURN_MARKER)
        w.leaf("AccptncDtTm", iso_time(status.completed_at))
        if status.bank_reference:
            w.leaf("AcctSvcrRef", status.bank_reference)
