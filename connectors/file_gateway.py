"""The gateway's side of the file connectors: write sets out, read answers in.

``FileDelivery`` serves one file-connected agent bank from inside the
gateway process. One round:
  1. Read what the bank wrote: acknowledgements, account-check answers and
     result files. Each is verified against the bank's signing certificate
     before a byte of it is parsed, stored as evidence, applied, and then
     deleted. A file that cannot be accepted is moved to ``refused/`` with a
     note, counted as a dead letter and logged as an alert: never skipped
     silently.
  2. Lease the bank's ready sets, as a pulling bank would, and write each as
     a signed file. The lease is the redelivery timer: a set whose file was
     not acknowledged in time is leased again, and its file, if gone, is
     written again with identical bytes.

Invariants and threats:
  * Nothing is lost: a set leaves the READY/LEASED states only by an
    acknowledgement of its file, or as a dead letter after
    ``Settings.max_deliveries``.
  * Nothing is paid twice: file names are set ids, a complete file is never
    overwritten, and the bank pays an instruction id once.
  * A result file can only report on instructions delivered to this bank,
    and only in this bank's signature (``gateway.exchange.record_results``).
  * One dead bank never slows the others: each bank has its own delivery,
    its own thread and its own circuit breaker; file-system errors are
    retried with backoff a bounded number of times, then open the breaker.
  * An instruction that the bank's format cannot carry (a name GBK cannot
    encode) makes its set a dead letter at once, for manual handling.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pybreaker
from sqlalchemy import Connection, select
from tenacity import (
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from connectors import exchange_files, fixed_width, iso20022
from connectors.file_protocol import (
    ACK,
    ANSWERS,
    CHECKS,
    BankFolders,
    Style,
    decode_ack,
    set_id_of,
)
from gateway import exchange
from gateway.core import GatewayCore
from gateway.errors import GatewayError
from gateway.states import SetKind, SetState
from gateway.store import schema
from keys.identity import Identity, Role
from ykt.v1 import envelope_pb2, exchange_pb2

_logger = logging.getLogger(__name__)

# The debtor named in pain.001: the agent bank's payout account, into which
# the treasury released the funds (Art. 19).
PAYOUT_ACCOUNT_NAME = "惠民惠农财政补贴资金代发专户"
INITIATING_PARTY = "一卡通补贴发放网关"

file_retry = retry(
    retry=retry_if_exception_type(OSError),
    wait=wait_exponential_jitter(multiplier=0.1, max=2.0),
    stop=stop_after_attempt(5),
    reraise=True,
)


class FileDelivery:
    """Delivers one bank's sets as files and takes in its answers."""

    def __init__(
        self,
        core: GatewayCore,
        bank_code: str,
        style: Style,
        root: Path,
        *,
        keep_files: bool = False,
        breaker: pybreaker.CircuitBreaker | None = None,
    ) -> None:
        self._core = core
        self._bank = Identity(Role.BANK, bank_code)
        self._style = style
        self._folders = BankFolders(root, bank_code).create()
        self._keep_files = keep_files
        self._breaker = breaker or pybreaker.CircuitBreaker(
            fail_max=5, reset_timeout=30, name=f"files-{bank_code}"
        )

    @property
    def bank_code(self) -> str:
        return self._bank.org

    def run_once(self) -> int:
        """One round; raises ``pybreaker.CircuitBreakerError`` while open."""
        moved: int = self._breaker.call(self._round)
        return moved

    def run_forever(self, stop: threading.Event, idle_seconds: float = 0.5) -> None:
        while not stop.is_set():
            try:
                moved = self.run_once()
            except pybreaker.CircuitBreakerError:
                moved = 0
            except Exception:
                _logger.exception(
                    "file exchange round failed", extra={"bank": self.bank_code}
                )
                moved = 0
            if not moved:
                stop.wait(idle_seconds)

    def _round(self) -> int:
        moved = self._receive()
        moved += self._deliver(SetKind.ACCOUNT_CHECK)
        moved += self._deliver(SetKind.INSTRUCTION)
        return moved

    # -- outbound --------------------------------------------------------------

    def _deliver(self, kind: SetKind) -> int:
        leased = exchange.lease_sets(self._core, self.bank_code, kind, 5)
        for item in leased:
            envelope = envelope_pb2.SignedEnvelope.FromString(item.envelope)
            if kind is SetKind.ACCOUNT_CHECK:
                name, payload_type = (
                    f"{item.set_id}{CHECKS}",
                    exchange_files.ACCOUNT_CHECKS,
                )
                data = item.envelope
            else:
                name = f"{item.set_id}{self._style.instruction_suffix}"
                payload_type = self._style.instruction_type
                try:
                    data = self._instruction_file(item.set_id, envelope)
                except GatewayError as exc:
                    # TODO: one payee name the bank's character set lacks holds
                    # back the whole set. Cutting that instruction out into a
                    # set of its own would let the others be paid; it needs a
                    # way to re-sign a set without it, which sets (signed
                    # once, immutable) do not have yet.
                    exchange.dead_letter(
                        self._core, item.set_id, self.bank_code, kind, exc.safe_message
                    )
                    continue
            self._write(name, data, payload_type)
        return len(leased)

    def _instruction_file(
        self, set_id: str, envelope: envelope_pb2.SignedEnvelope
    ) -> bytes:
        """The set in the bank's format, the same bytes on every delivery."""
        instruction_set = exchange_pb2.InstructionSet.FromString(envelope.payload)
        created_at = instruction_set.header.created_at.ToDatetime(tzinfo=dt.UTC)
        out = io.BytesIO()
        if self._style is Style.FIXED_WIDTH:
            for instruction in instruction_set.instructions:
                fixed_width.check_instruction(instruction)
            fixed_width.write_instruction_file(
                out,
                fixed_width.InstructionFileHeader.for_set(instruction_set, created_at),
                instruction_set.instructions,
            )
        else:
            iso20022.write_pain001(
                out,
                list(instruction_set.instructions),
                message_id=f"{set_id}.p0",
                payment_information_id=f"{set_id}.p0",
                created_at=created_at,
                execution_date=created_at.date(),
                debtor=iso20022.Debtor(
                    name=PAYOUT_ACCOUNT_NAME,
                    account=f"{self.bank_code}-{instruction_set.policy_code}",
                    agent_code=self.bank_code,
                ),
                initiating_party=INITIATING_PARTY,
                remittance=f"{instruction_set.policy_name} {instruction_set.period}",
            )
        return out.getvalue()

    @file_retry
    def _write(self, name: str, data: bytes, payload_type: str) -> None:
        to_bank = self._folders.to_bank
        if (to_bank / exchange_files.signature_name(name)).exists():
            return  # complete and waiting for its acknowledgement
        exchange_files.write_signed(
            to_bank, name, data, signer=self._core.signer, payload_type=payload_type
        )

    # -- inbound ---------------------------------------------------------------

    def _receive(self) -> int:
        moved = 0
        irregular = exchange_files.list_irregular(self._folders.from_bank)
        # One refusal per file: its data and its signature go together.
        for name in sorted({_file_of(entry) for entry in irregular}):
            self._refuse_entry(name)
            moved += 1
        for name in exchange_files.list_complete(self._folders.from_bank):
            try:
                self._accept(name)
            except (GatewayError, ValueError) as exc:
                self._refuse(name, exc)
            moved += 1
        return moved

    def _accept(self, name: str) -> None:
        if name.endswith(ACK):
            self._acknowledged(name)
        elif name.endswith(ANSWERS):
            verified = self._read(name, exchange_files.ACCOUNT_CHECK_ANSWERS)
            answer = envelope_pb2.SignedEnvelope.FromString(verified.data)
            exchange.post_account_check_results(self._core, self._bank, answer)
        elif name.endswith(self._style.result_suffix):
            verified = self._read(name, self._style.result_type)
            results = self._results_of(verified.data)
            evidence = envelope_pb2.SignedEnvelope(
                payload_type=verified.payload_type,
                payload=verified.data,
                signature=verified.signature.signature,
                signer_certificate=verified.signature.signer_certificate,
            )
            exchange.record_results(self._core, self._bank, results, name, evidence)
        else:
            raise ValueError("the file name has no known suffix")
        self._done_with(self._folders.from_bank, name)

    def _acknowledged(self, name: str) -> None:
        verified = self._read(name, exchange_files.ACKNOWLEDGEMENT)
        target, digest = decode_ack(verified.data)
        for suffix in (CHECKS, self._style.instruction_suffix):
            if target.endswith(suffix):
                set_id = set_id_of(target, suffix)
                break
        else:
            raise ValueError("the acknowledgement names no file of ours")
        kind = SetKind.ACCOUNT_CHECK if target.endswith(CHECKS) else SetKind.INSTRUCTION
        written = self._folders.to_bank / target
        if written.exists() or written.is_symlink():
            data = exchange_files.read_bounded(written, exchange_files.MAX_FILE_BYTES)
            if hashlib.sha256(data).hexdigest() != digest:
                raise ValueError("the acknowledgement is for other bytes than we wrote")
        exchange.acknowledge_set(self._core, self.bank_code, set_id, None, kind=kind)
        self._done_with(self._folders.to_bank, target)

    def _done_with(self, folder: Path, name: str) -> None:
        """Delete a file and its signature, or keep them out of the way."""
        if not self._keep_files:
            exchange_files.delete_acknowledged(folder, name)
            return
        _move(folder, name, self._folders.kept)

    def _read(self, name: str, payload_type: str) -> exchange_files.VerifiedFile:
        return exchange_files.read_verified(
            self._folders.from_bank,
            name,
            payload_type=payload_type,
            trust=self._core.trust,
            expected_signer=self._bank,
        )

    def _results_of(self, data: bytes) -> list[exchange_pb2.Result]:
        if self._style is Style.FIXED_WIDTH:
            header, results = fixed_width.load_results(io.BytesIO(data))
            if header.bank_code != self.bank_code:
                raise ValueError("the result file names another bank")
            return results
        with self._core.engine.connect() as connection:
            index = _EndToEndIds(connection, self.bank_code)
            report = iso20022.read_pain002(io.BytesIO(data), end_to_end_ids=index)
        return report.results

    def _refuse(self, name: str, exc: Exception) -> None:
        """Move a file we cannot accept aside, with a note; count and alert."""
        reason = exc.safe_message if isinstance(exc, GatewayError) else str(exc)
        self._set_aside(name, f"{type(exc).__name__}: {reason}", type(exc).__name__)

    def _refuse_entry(self, name: str) -> None:
        """A link, folder or device in from-bank, with its signature: moved
        aside, never followed."""
        self._set_aside(name, "not a regular file", "NotARegularFile")

    def _set_aside(self, name: str, note: str, error: str) -> None:
        _move(self._folders.from_bank, name, self._folders.refused)
        exchange_files.write_atomically(
            self._folders.refused, f"{name}.why", f"{note}\n".encode()
        )
        self._core.on_dead_letter(self.bank_code, "inbound-file")
        _logger.error(
            "ALERT: inbound file refused",
            extra={"bank": self.bank_code, "file": name, "error": error},
        )


def _move(folder: Path, name: str, into: Path) -> None:
    """Move a file and its signature, signature first (the file stops being
    complete before it moves); a link is moved itself, never followed."""
    for part in (exchange_files.signature_name(name), name):
        source = folder / part
        if source.exists() or source.is_symlink():
            source.replace(into / part)


def _file_of(entry: str) -> str:
    """The file an entry belongs to: itself, or the file it is a signature of."""
    return entry.removesuffix(exchange_files.SIGNATURE_SUFFIX)


class _EndToEndIds(Mapping[str, str]):
    """EndToEndId -> instruction id, for the instructions this bank was sent.

    An id of at most 34 characters travels as itself; a longer one as a
    35-character digest (``iso20022.end_to_end_id``), which is resolved by
    indexing the bank's delivered instructions once, on first need.
    """

    def __init__(self, connection: Connection, bank_code: str) -> None:
        self._connection = connection
        self._bank_code = bank_code
        self._index: dict[str, str] | None = None

    def __getitem__(self, key: str) -> str:
        if len(key) < iso20022.MAX_ID:
            return key
        if self._index is None:
            self._index = iso20022.end_to_end_index(self._delivered_ids())
        return self._index[key]

    def _delivered_ids(self) -> Iterator[str]:
        records, sets = schema.records, schema.exchange_sets
        rows = self._connection.execute(
            select(records.c.record_id)
            .join(sets, sets.c.set_id == records.c.instruction_set_id)
            .where(
                sets.c.bank_code == self._bank_code,
                sets.c.state != SetState.HELD.value,
            )
        )
        for row in rows:
            yield row.record_id

    def __iter__(self) -> Iterator[str]:
        raise TypeError("this index answers lookups only")

    def __len__(self) -> int:
        raise TypeError("this index answers lookups only")
