"""The bank's side of the file connectors: read sets, pay, write results.

A runner the bank operates next to its core, for banks that exchange files
with the gateway (``fixed-width-file`` or ``iso20022-file``; the folders and
names are in ``connectors.file_protocol``). One round:
  1. Every complete file in ``to-bank`` is verified against the gateway's
     signing certificate before it is parsed, and checked to be addressed to
     this bank.
  2. Account checks are answered from the core; the answer is written, then
     the check file is acknowledged.
  3. Instructions are handed to the core, which records each durably and
     pays it once; then the file is acknowledged.
  4. Whatever the core has not reported yet (first results, refunds of
     cross-bank credits) is written as one signed result file; the core marks
     it reported once the file is complete.

Invariants:
  * The runner keeps nothing of its own: what it has paid is in the core,
    and a file stays in ``to-bank`` until the gateway saw its
    acknowledgement. Reading a file twice is harmless: the core pays an
    instruction id once, and an answer or acknowledgement already written is
    not written again.
  * A crash anywhere loses nothing: an unacknowledged file is still there,
    and unreported outcomes are reported on the next round.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

from connectors import exchange_files, fixed_width, iso20022
from connectors.base import CoreAdapter, PaymentOutcome, register
from connectors.faults import NO_FAULTS, Fault, Faults
from connectors.file_protocol import (
    ACK,
    ANSWERS,
    CHECKS,
    BankFolders,
    Style,
    encode_ack,
    set_id_of,
)
from gateway.core import GATEWAY_AUDIENCE
from gateway.envelope import open_envelope, seal
from gateway.errors import GatewayError
from keys.identity import Identity, Role
from keys.signing import Signer
from keys.trust import TrustStore
from ykt.v1 import envelope_pb2, exchange_pb2

_logger = logging.getLogger(__name__)

GATEWAY = Identity(Role.GATEWAY, "gateway")

# The most outcomes one result file carries.
REPORT_BATCH = 1000


class FileBankRunner:
    """Plays one agent bank's file exchange with the gateway."""

    def __init__(
        self,
        style: Style,
        root: Path,
        core: CoreAdapter,
        signer: Signer,
        trust: TrustStore,
        *,
        gateway: Identity = GATEWAY,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        faults: Faults = NO_FAULTS,
    ) -> None:
        self.name = style.value
        self._faults = faults
        self._style = style
        self._core = core
        self._signer = signer
        self._trust = trust
        self._gateway = gateway
        self._clock = clock
        self.bank_code = signer.identity.org
        self._folders = BankFolders(root, self.bank_code).create()
        # This runner is the only writer of from-bank: a temporary file there
        # is a write a crash interrupted, and will never be completed.
        for stale in self._folders.from_bank.glob(f".*{exchange_files.TEMP_SUFFIX}"):
            stale.unlink()

    def run_once(self) -> int:
        moved = 0
        for name in exchange_files.list_complete(self._folders.to_bank):
            if (
                self._folders.from_bank / exchange_files.signature_name(name + ACK)
            ).exists():
                continue  # acknowledged; the gateway has yet to remove it
            try:
                moved += self._handle(name)
            except (GatewayError, ValueError) as exc:
                _logger.error(
                    "file from the gateway refused",
                    extra={"file": name, "error": type(exc).__name__},
                )
        moved += self._report_outcomes()
        return moved

    def run_forever(self, stop: threading.Event, idle_seconds: float = 0.5) -> None:
        while not stop.is_set():
            try:
                moved = self.run_once()
            except OSError:
                _logger.exception("file round failed")
                moved = 0
            if not moved:
                stop.wait(idle_seconds)

    def _handle(self, name: str) -> int:
        if name.endswith(CHECKS):
            return self._answer_checks(name)
        if name.endswith(self._style.instruction_suffix):
            return self._pay(name)
        raise ValueError("the file name has no known suffix")

    # 2. Account checks.
    def _answer_checks(self, name: str) -> int:
        verified = self._read(name, exchange_files.ACCOUNT_CHECKS)
        check_set = open_envelope(
            envelope_pb2.SignedEnvelope.FromString(verified.data),
            exchange_pb2.AccountCheckSet,
            trust=self._trust,
            audience=self.bank_code,
            now=self._clock(),
        ).message
        set_id = check_set.header.subject_id
        if set_id != set_id_of(name, CHECKS):
            raise ValueError("the file name and the set it carries disagree")

        self._faults.slow_down()
        answer = exchange_pb2.AccountCheckResultSet(check_set_id=set_id)
        statuses = self._core.verify_accounts(check_set.checks)
        for check, status in zip(check_set.checks, statuses, strict=True):
            answer.results.add(check_id=check.check_id, status=status)
        envelope = seal(
            self._signer,
            answer,
            audience=GATEWAY_AUDIENCE,
            subject_id=f"{set_id}.answer",
            now=self._clock(),
        )
        self._write_once(
            f"{set_id}{ANSWERS}",
            envelope.SerializeToString(),
            exchange_files.ACCOUNT_CHECK_ANSWERS,
        )
        self._acknowledge(name, verified.data)
        return 1

    # 3. Instructions.
    def _pay(self, name: str) -> int:
        verified = self._read(name, self._style.instruction_type)
        set_id = set_id_of(name, self._style.instruction_suffix)
        self._core.pay_all(self._instructions(verified.data, set_id), origin=set_id)
        self._faults.crash_if(Fault.CRASH_BEFORE_ACK)
        self._acknowledge(name, verified.data)
        return 1

    def _instructions(self, data: bytes, set_id: str) -> list[exchange_pb2.Instruction]:
        if self._style is Style.FIXED_WIDTH:
            instruction_set = fixed_width.load_instruction_set(io.BytesIO(data))
            if instruction_set.bank_code != self.bank_code:
                raise ValueError("the instruction file is for another bank")
            if instruction_set.header.subject_id != set_id:
                raise ValueError("the file name and the set it carries disagree")
            return list(instruction_set.instructions)
        contents = iso20022.read_pain001(io.BytesIO(data))
        if contents.message_id != iso20022.end_to_end_id(f"{set_id}.p0"):
            raise ValueError("the file name and the message it carries disagree")
        # The bank knows the payment by its EndToEndId, as a real core would.
        return [
            exchange_pb2.Instruction(
                instruction_id=transfer.end_to_end_id,
                payee_name=transfer.creditor_name,
                account_number=transfer.creditor_account,
                amount_fen=transfer.amount_fen,
            )
            for transfer in contents.transfers
        ]

    # 4. Results and refunds.
    def _report_outcomes(self) -> int:
        outcomes = self._core.unreported(self._clock())
        # A pain.002 reports on one original message, so ISO 20022 results
        # are grouped by the set that carried them; a fixed-width result file
        # may mix sets.
        groups: dict[str, list[PaymentOutcome]] = {}
        for outcome in outcomes:
            key = outcome.origin if self._style is Style.ISO20022 else ""
            groups.setdefault(key, []).append(outcome)
        for origin, group in groups.items():
            for start in range(0, len(group), REPORT_BATCH):
                part = group[start : start + REPORT_BATCH]
                name = f"results-{self._clock():%Y%m%d%H%M%S}-{secrets.token_hex(4)}"
                data = self._result_file(name, origin, part)
                if self._faults.hits(Fault.TRUNCATE):
                    self._die_half_way(name + self._style.result_suffix, data)
                self._write_once(
                    name + self._style.result_suffix, data, self._style.result_type
                )
                if self._faults.hits(Fault.DUPLICATE_RESULTS):
                    copy = f"{name}-again"
                    self._write_once(
                        copy + self._style.result_suffix,
                        self._result_file(copy, origin, part),
                        self._style.result_type,
                    )
                self._core.mark_reported(part)
        return len(outcomes)

    def _result_file(
        self, name: str, origin: str, outcomes: list[PaymentOutcome]
    ) -> bytes:
        out = io.BytesIO()
        now = self._clock()
        if self._style is Style.FIXED_WIDTH:
            fixed_width.write_result_file(
                out,
                fixed_width.ResultFileHeader(self.bank_code, name, now, len(outcomes)),
                [_result(outcome) for outcome in outcomes],
            )
            return out.getvalue()
        iso20022.write_pain002(
            out,
            [
                iso20022.TransactionStatus(
                    end_to_end_id=o.instruction_id,
                    status=o.status,
                    reason_code=o.reason_code,
                    bank_reference=o.bank_reference,
                    completed_at=o.completed_at,
                )
                for o in outcomes
            ],
            message_id=name,
            created_at=now,
            original_message_id=f"{origin}.p0",
            original_payment_information_id=f"{origin}.p0",
        )
        return out.getvalue()

    # -- files -----------------------------------------------------------------

    def _read(self, name: str, payload_type: str) -> exchange_files.VerifiedFile:
        return exchange_files.read_verified(
            self._folders.to_bank,
            name,
            payload_type=payload_type,
            trust=self._trust,
            expected_signer=self._gateway,
        )

    def _acknowledge(self, name: str, data: bytes) -> None:
        self._write_once(
            name + ACK, encode_ack(name, data), exchange_files.ACKNOWLEDGEMENT
        )

    def _die_half_way(self, name: str, data: bytes) -> None:
        """The truncate fault: half a file under its temporary name, then a
        crash, as a power cut during the write would leave it."""
        partial = self._folders.from_bank / f".{name}{exchange_files.TEMP_SUFFIX}"
        partial.write_bytes(data[: len(data) // 2])
        self._faults.crash()

    def _write_once(self, name: str, data: bytes, payload_type: str) -> None:
        self._faults.drop_write()
        from_bank = self._folders.from_bank
        if (from_bank / exchange_files.signature_name(name)).exists():
            return
        exchange_files.write_signed(
            from_bank, name, data, signer=self._signer, payload_type=payload_type
        )


def _result(outcome: PaymentOutcome) -> exchange_pb2.Result:
    result = exchange_pb2.Result(
        instruction_id=outcome.instruction_id,
        status=outcome.status,
        reason_code=outcome.reason_code,
        bank_reference=outcome.bank_reference,
    )
    result.completed_at.FromDatetime(outcome.completed_at)
    return result


register(Style.FIXED_WIDTH.value)(FileBankRunner)
register(Style.ISO20022.value)(FileBankRunner)
