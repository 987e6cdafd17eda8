"""Regenerate the golden exchange files in tests/golden/ from fixed inputs.

Four files, built from fictional people (tests/fakes.py, fixed seed) and a
fixed clock, so every run gives the same bytes:

  * ``instructions.txt``: a GBK fixed-width instruction file;
  * ``results.txt``: a GBK fixed-width result file (PAID, FAILED, RETURNED);
  * ``pain001.xml``: a pain.001.001.09 file for the same instructions;
  * ``pain002.xml``: a pain.002.001.10 report with the same three outcomes.

``tests/test_exchange_files.py`` calls ``build_golden()`` and fails when the
checked-in files differ from it, so a format change shows up as a diff to
review. Signatures are not golden: ECDSA signatures are randomised.

Usage::

    .venv/bin/python scripts/gen_golden.py           # rewrite tests/golden/
    .venv/bin/python scripts/gen_golden.py --check   # exit 1 on drift
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from connectors import fixed_width, iso20022  # noqa: E402
from tests.fakes import people  # noqa: E402
from ykt.v1 import exchange_pb2  # noqa: E402

GOLDEN = ROOT / "tests" / "golden"
CREATED_AT = dt.datetime(2026, 3, 2, 1, 30, tzinfo=dt.UTC)
COMPLETED_AT = dt.datetime(2026, 3, 2, 6, 15, 42, tzinfo=dt.UTC)
RETURNED_AT = dt.datetime(2026, 3, 5, 2, 0, 5, tzinfo=dt.UTC)
BATCH_ID = "500154-NYNC-CQ-NY-001-2026-golden"
SET_ID = f"{BATCH_ID}.i0"
BANK = "CQRCB"
DEBTOR = iso20022.Debtor(
    name="开州区财政局惠民惠农补贴专户",
    account="3100000000000000001",
    agent_code=BANK,
)


def golden_instruction_set() -> exchange_pb2.InstructionSet:
    """Three fictional instructions; the ids are longer than 35 characters."""
    message = exchange_pb2.InstructionSet(
        bank_code=BANK,
        policy_code="CQ-NY-001",
        policy_name="耕地地力保护补贴",
        period="2026",
    )
    message.header.subject_id = SET_ID
    for row, (person, fen) in enumerate(
        zip(people(3, seed=2026), [123456, 80000, 5], strict=True), start=1
    ):
        message.instructions.add(
            instruction_id=f"{BATCH_ID}.r{row}",
            payee_name=person.name,
            account_number=person.account,
            amount_fen=fen,
        )
    return message


def golden_outcomes() -> list[tuple[str, exchange_pb2.ResultStatus.ValueType, str]]:
    """(instruction id, status, reason code) for the three instructions."""
    ids = [i.instruction_id for i in golden_instruction_set().instructions]
    return [
        (ids[0], exchange_pb2.RESULT_STATUS_PAID, ""),
        (ids[1], exchange_pb2.RESULT_STATUS_FAILED, "ACCOUNT_FROZEN"),
        (ids[2], exchange_pb2.RESULT_STATUS_RETURNED, "ACCOUNT_CLOSED"),
    ]


def _results() -> list[exchange_pb2.Result]:
    results = []
    for n, (iid, status, reason) in enumerate(golden_outcomes(), start=1):
        result = exchange_pb2.Result(
            instruction_id=iid,
            status=status,
            reason_code=reason,
            bank_reference=f"CQRCB20260302{n:06d}",
        )
        returned = status == exchange_pb2.RESULT_STATUS_RETURNED
        result.completed_at.FromDatetime(RETURNED_AT if returned else COMPLETED_AT)
        results.append(result)
    return results


def build_golden() -> dict[str, bytes]:
    """File name -> exact bytes of each golden file."""
    instruction_set = golden_instruction_set()
    files: dict[str, bytes] = {}

    out = io.BytesIO()
    fixed_width.write_instruction_file(
        out,
        fixed_width.InstructionFileHeader.for_set(instruction_set, CREATED_AT),
        instruction_set.instructions,
    )
    files["instructions.txt"] = out.getvalue()

    results = _results()
    out = io.BytesIO()
    fixed_width.write_result_file(
        out,
        fixed_width.ResultFileHeader(BANK, f"{SET_ID}.results", COMPLETED_AT, 3),
        results,
    )
    files["results.txt"] = out.getvalue()

    out = io.BytesIO()
    part = iso20022.write_pain001(
        out,
        list(instruction_set.instructions),
        message_id=f"{SET_ID}.p0",
        payment_information_id=f"{SET_ID}.p0",
        created_at=CREATED_AT,
        execution_date=dt.date(2026, 3, 2),
        debtor=DEBTOR,
        initiating_party="ykt gateway",
        remittance=instruction_set.policy_name,
    )
    files["pain001.xml"] = out.getvalue()

    out = io.BytesIO()
    iso20022.write_pain002(
        out,
        [
            iso20022.TransactionStatus(
                end_to_end_id=iso20022.end_to_end_id(r.instruction_id),
                status=r.status,
                reason_code=r.reason_code,
                bank_reference=r.bank_reference,
                completed_at=r.completed_at.ToDatetime(tzinfo=dt.UTC),
            )
            for r in results
        ],
        message_id="CQRCB-STS-20260305-0001",
        created_at=RETURNED_AT,
        original_message_id=part.message_id,
        original_payment_information_id=part.payment_information_id,
    )
    files["pain002.xml"] = out.getvalue()
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail on drift")
    args = parser.parse_args(argv)

    files = build_golden()
    if args.check:
        drifted = [
            name
            for name, data in files.items()
            if not (GOLDEN / name).exists() or (GOLDEN / name).read_bytes() != data
        ]
        for name in drifted:
            print(f"drift: tests/golden/{name}")
        return 1 if drifted else 0

    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (GOLDEN / name).write_bytes(data)
        print(f"wrote tests/golden/{name} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
