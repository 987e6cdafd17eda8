"""``ykt validate``: a department checks its file before it submits it.

Offline, the file-level checks run on the department's own machine: the
file's format, ID numbers, names, amounts, the policy's limit and duplicates
within the file. With a gateway, a dry run sends the records over mutual TLS
under a manifest signed with ``dry_run`` set; the gateway runs every non-bank
check and stores nothing. The registry and the reference lists never leave
the gateway: only each record's verdict comes back.

The output names records by row and carries reason codes with their Chinese
messages, never a name, ID number or account number, so the verdict CSV can
be passed around an office without spreading personal data.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import secrets
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from gateway.files import DepartmentFile, SourceRow
from gateway.normalize import format_fen, parse_amount_fen
from gateway.reasons import ID_STORED_AS_NUMBER_ZH, ReasonCode, message_zh
from gateway.rules import BatchChecker, PolicyRules, RegistryEntry
from ykt.v1 import batch_pb2, services_pb2, services_pb2_grpc


@dataclass(frozen=True)
class RowVerdict:
    """One record's verdict, as a department sees it."""

    row: int
    file_row: int
    accepted: bool
    reasons: tuple[str, ...]
    id_stored_as_number: bool = False

    def messages(self) -> list[str]:
        out = []
        for code in self.reasons:
            try:
                reason = ReasonCode(code)
            except ValueError:
                out.append("")
                continue
            out.append(message_zh(reason, id_stored_as_number=self.id_stored_as_number))
        return out


@dataclass
class Report:
    """What a validation found: per-record verdicts and file-level problems."""

    verdicts: list[RowVerdict] = field(default_factory=list)
    file_problems: list[str] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        """Records by primary reason; accepted records count as "ACCEPTED"."""
        return Counter(v.reasons[0] if v.reasons else "ACCEPTED" for v in self.verdicts)


class _OfflineLookups:
    """Digests under a key that lives only as long as this run.

    Offline, a digest only has to tell people apart within the file, so a
    random key is enough; nothing is looked up anywhere.
    """

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def person_digest(self, normalised_id: str) -> bytes:
        return hmac.new(self._key, b"p" + normalised_id.encode(), "sha256").digest()

    def account_digest(self, digits: str) -> bytes:
        return hmac.new(self._key, b"a" + digits.encode(), "sha256").digest()

    def registry_entry(self, person: bytes) -> RegistryEntry | None:
        return None

    def on_list(self, list_name: str, person: bytes) -> bool:
        return False

    def already_claimed(self, person: bytes, policy_code: str, period: str) -> bool:
        return False

    def claimed_in_batch(self, person: bytes) -> bool:
        return False


def check_total(source: DepartmentFile, rows: Iterable[SourceRow]) -> str | None:
    """Compare the file's 合计 row, if any, with the sum of its records.

    Amounts that are not valid numbers are left out of the sum, as they are
    refused anyway. Returns the problem, in words, or None.
    """
    total = sum(parse_amount_fen(row.amount) or 0 for row in rows)
    declared = source.declared_total_fen
    if declared is None or declared == total:
        return None
    return (
        f"合计行金额 {format_fen(declared)} 元与各行金额之和 {format_fen(total)} 元"
        f"不一致，请核对 (the total row says {format_fen(declared)}, the rows add "
        f"up to {format_fen(total)})"
    )


def validate_offline(
    source: DepartmentFile,
    policy: PolicyRules | None,
    period: str,
    today: dt.date,
) -> Report:
    """The file-level checks. Without a policy, its limit is not checked."""
    rules = policy or PolicyRules(
        "", max_amount_fen=2**62, requires_list=None, excludes_list=None
    )
    checker = BatchChecker(
        rules, period, _OfflineLookups(), today, file_checks_only=True
    )
    report = Report()
    rows = list(source.iter_rows())
    for row in rows:
        verdict = checker.check_row(row)
        report.verdicts.append(
            RowVerdict(
                row=row.row,
                file_row=row.file_row,
                accepted=verdict.accepted,
                reasons=tuple(verdict.reasons),
                id_stored_as_number=verdict.id_stored_as_number,
            )
        )
    problem = check_total(source, rows)
    if problem:
        report.file_problems.append(problem)
    return report


def validate_online(
    channel: grpc.Channel,
    requests: Iterable[services_pb2.ValidateBatchRequest],
    file_rows: dict[int, int],
) -> Iterator[RowVerdict]:
    """Stream a dry run to the gateway and yield its verdicts."""
    stub = services_pb2_grpc.DepartmentServiceStub(channel)
    for response in stub.ValidateBatch(iter(requests), timeout=600):
        yield RowVerdict(
            row=response.row,
            file_row=file_rows.get(response.row, 0),
            accepted=response.accepted,
            reasons=tuple(reason.code for reason in response.reasons),
            id_stored_as_number=any(
                reason.message == ID_STORED_AS_NUMBER_ZH for reason in response.reasons
            ),
        )


def records_of(rows: Iterable[SourceRow]) -> list[batch_pb2.PaymentRecord]:
    """A file's rows as the records a batch carries, as a list."""
    return list(iter_records(rows))


def iter_records(rows: Iterable[SourceRow]) -> Iterator[batch_pb2.PaymentRecord]:
    """A file's rows as the records a batch carries, one at a time, so a
    spooled submission never holds the whole file."""
    for row in rows:
        yield batch_pb2.PaymentRecord(
            row=row.row,
            name=row.name,
            id_number=row.id_number,
            account_number=row.account_number,
            amount=row.amount,
            bank_name=row.bank_name,
            proxy_name=row.proxy_name,
            proxy_id_number=row.proxy_id_number,
        )


VERDICT_COLUMNS = ("row", "file_row", "accepted", "reasons", "messages")


def write_verdicts(path: Path, verdicts: Iterable[RowVerdict]) -> None:
    """The verdict CSV: UTF-8 with a byte-order mark, so Excel reads it."""
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(VERDICT_COLUMNS)
        for verdict in verdicts:
            writer.writerow(
                (
                    verdict.row,
                    verdict.file_row,
                    "yes" if verdict.accepted else "no",
                    ";".join(verdict.reasons),
                    "；".join(verdict.messages()),
                )
            )


def batch_id_for(path: Path, period: str) -> str:
    """A stable dry-run batch id: the same file validates under the same id."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return f"dryrun-{period}-{digest}"
