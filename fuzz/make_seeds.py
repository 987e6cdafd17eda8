"""Write the seed inputs of every target into ``fuzz/corpus/<target>/``.

Seeds are small, valid (or nearly valid) inputs made with the project's own
writers and fictional data only, so that mutation starts from files that
reach deep into each parser. Run it again after a format changes:

    .venv/bin/python -m fuzz.make_seeds

It writes only ``seed-*`` files and never touches ``crash-*`` files, which
are findings and stay until their bug is fixed and they pass.
"""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import io
from collections.abc import Callable
from pathlib import Path

from connectors import fixed_width as fw
from connectors import iso20022 as iso
from connectors.exchange_files import FIXED_WIDTH_INSTRUCTIONS
from connectors.file_protocol import encode_ack
from fuzz.targets import department_file, envelope, pain002
from gateway.normalize import id_check_char
from ykt.v1 import batch_pb2, envelope_pb2, exchange_pb2

CORPUS = Path(__file__).resolve().parent / "corpus"

# Fictional people: made-up names, numbers built to pass their check digits.
PEOPLE = (
    ("测试甲", "50015419800101001", "621459000000000001"),
    ("测试乙", "50015419750615002", "621459000000000002"),
    ("测试丙", "50015419620517003", "621459000000000003"),
)
WHEN = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def _luhn(partial: str) -> str:
    total = 0
    for position, char in enumerate(reversed(partial)):
        digit = int(char) * (2 if position % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return partial + str(-total % 10)


def people() -> list[tuple[str, str, str]]:
    return [
        (name, body + id_check_char(body), _luhn(card)) for name, body, card in PEOPLE
    ]


# -- department files -------------------------------------------------------


def department_csv() -> str:
    lines = ["2026年耕地地力保护补贴发放清册,,,,", ""]
    lines.append("序号,姓名,身份证号码,一卡通账号,补贴金额（元）")
    for number, (name, id_number, account) in enumerate(people(), 1):
        lines.append(f"{number},{name},{id_number},{account},{100 * number}.50")
    lines += ["", "合计,,,,601.50", "制表人：,,审核人：,,"]
    return "\r\n".join(lines) + "\r\n"


def department_seeds() -> dict[str, bytes]:
    text = department_csv()
    parts = department_file.xlsx_parts()
    return {
        "seed-csv-utf8": b"\x00" + text.encode("utf-8"),
        "seed-csv-utf8-bom": b"\x00" + codecs.BOM_UTF8 + text.encode("utf-8"),
        "seed-csv-gbk": b"\x00" + text.encode("gbk"),
        "seed-xlsx": b"\x00"
        + department_file.xlsx_with_sheet(parts[department_file.SHEET_PART]),
        "seed-sheet-xml": b"\x01" + parts[department_file.SHEET_PART],
    }


# -- fixed-width and ISO 20022 files ----------------------------------------


def instruction_set() -> exchange_pb2.InstructionSet:
    message = exchange_pb2.InstructionSet(
        bank_code="CQRCB",
        policy_code="CQ-NY-001",
        policy_name="耕地地力保护补贴",
        period="2026",
    )
    message.header.subject_id = "set-fuzz-1"
    for row, (name, _, account) in enumerate(people(), 1):
        message.instructions.add(
            instruction_id=f"batch-fuzz.r{row}",
            payee_name=name,
            account_number=account,
            amount_fen=10_050 * row,
        )
    return message


def instruction_seeds() -> dict[str, bytes]:
    message = instruction_set()
    out = io.BytesIO()
    header = fw.InstructionFileHeader.for_set(message, WHEN)
    fw.write_instruction_file(out, header, message.instructions)
    del message.instructions[:]
    empty = io.BytesIO()
    fw.write_instruction_file(
        empty, fw.InstructionFileHeader.for_set(message, WHEN), []
    )
    return {
        "seed-three-instructions": out.getvalue(),
        "seed-empty-set": empty.getvalue(),
    }


def results() -> list[exchange_pb2.Result]:
    paid = exchange_pb2.Result(
        instruction_id="batch-fuzz.r1",
        status=exchange_pb2.RESULT_STATUS_PAID,
        bank_reference="CQRCB20260302000001",
    )
    failed = exchange_pb2.Result(
        instruction_id="batch-fuzz.r2",
        status=exchange_pb2.RESULT_STATUS_FAILED,
        reason_code="ACCOUNT_CLOSED",
    )
    returned = exchange_pb2.Result(
        instruction_id="batch-fuzz.r3",
        status=exchange_pb2.RESULT_STATUS_RETURNED,
        reason_code="ACCOUNT_NOT_FOUND",
    )
    for result in (paid, failed, returned):
        result.completed_at.FromDatetime(WHEN)
    return [paid, failed, returned]


def result_seeds() -> dict[str, bytes]:
    out = io.BytesIO()
    items = results()
    header = fw.ResultFileHeader("CQRCB", "res-fuzz-1", WHEN, len(items))
    fw.write_result_file(out, header, items)
    return {"seed-three-results": out.getvalue()}


def pain001_seeds() -> dict[str, bytes]:
    out = io.BytesIO()
    iso.write_pain001(
        out,
        list(instruction_set().instructions),
        message_id="set-fuzz-1",
        payment_information_id="set-fuzz-1.p0",
        created_at=WHEN,
        execution_date=WHEN.date(),
        debtor=iso.Debtor("开州区财政补贴代发户", "1234567890123456789", "CQRCB"),
        initiating_party="ykt gateway",
        remittance="CQ-NY-001 2026",
    )
    return {"seed-three-transfers": out.getvalue()}


def pain002_seeds() -> dict[str, bytes]:
    ids = list(pain002.END_TO_END_IDS)
    statuses = [
        iso.TransactionStatus(
            end_to_end_id=ids[n],
            status=result.status,
            reason_code=result.reason_code,
            bank_reference=result.bank_reference,
            completed_at=WHEN,
        )
        for n, result in enumerate(results())
    ]
    out = io.BytesIO()
    iso.write_pain002(
        out,
        statuses,
        message_id="res-fuzz-1",
        created_at=WHEN,
        original_message_id="set-fuzz-1",
        original_payment_information_id="set-fuzz-1.p0",
    )
    return {"seed-paid-failed-returned": out.getvalue()}


# -- envelopes and acknowledgements -----------------------------------------


def envelope_seeds() -> dict[str, bytes]:
    manifest = batch_pb2.BatchManifest(
        county="500154",
        department="NYNC",
        policy_code="CQ-NY-001",
        period="2026",
        record_count=3,
        total_amount_fen=60_300,
        chunk_sha256=[hashlib.sha256(b"chunk 0").digest()],
        source_file="fictional.csv",
    )
    manifest.header.subject_id = "batch-fuzz"
    manifest.header.created_at.FromDatetime(envelope.NOW - dt.timedelta(hours=1))
    manifest.header.expires_at.FromDatetime(envelope.NOW + dt.timedelta(hours=23))
    payload = manifest.SerializeToString(deterministic=True)
    kind = "ykt.v1.BatchManifest"
    sealed = envelope.signed(kind, payload)
    unsigned = envelope_pb2.SignedEnvelope(payload_type=kind, payload=payload)
    detached = envelope_pb2.SignedEnvelope(
        payload_type=FIXED_WIDTH_INSTRUCTIONS,
        signature=sealed.signature,
    )
    return {
        # Mode 0 (network envelope), payload type 0 (BatchManifest).
        "seed-envelope-signed-by-an-old-key": b"\x00\x00" + sealed.SerializeToString(),
        "seed-envelope-without-certificate": b"\x00\x00" + unsigned.SerializeToString(),
        # Mode 1 (payload signed by the target).
        "seed-payload": b"\x01\x00" + payload,
        # Mode 2 (header bound by the target): opens cleanly.
        "seed-bound-payload": b"\x02\x00" + payload,
        # Mode 3 (detached file signature).
        "seed-detached-signature": b"\x03\x00" + detached.SerializeToString(),
    }


def ack_seeds() -> dict[str, bytes]:
    return {
        "seed-ack-ins": encode_ack("set-fuzz-1.ins", b"instruction file bytes"),
        "seed-ack-checks": encode_ack("set-fuzz-1.checks", b"check set bytes"),
    }


SEEDS: dict[str, Callable[[], dict[str, bytes]]] = {
    "department_file": department_seeds,
    "fixed_width_instructions": instruction_seeds,
    "fixed_width_results": result_seeds,
    "pain002": pain002_seeds,
    "pain001": pain001_seeds,
    "envelope": envelope_seeds,
    "ack": ack_seeds,
}


def main() -> None:
    for target, make in SEEDS.items():
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("seed-*"):
            old.unlink()
        for name, data in make().items():
            (folder / name).write_bytes(data)
        print(f"{target}: {len(list(folder.glob('seed-*')))} seeds")


if __name__ == "__main__":
    main()
