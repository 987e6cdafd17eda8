"""The ``grpc-pull`` connector: a runner the bank operates next to its core.

One round:
  1. Pull account-check sets; verify the gateway's signature before parsing;
     ask the core; post one signed answer set per check set.
  2. Pull instruction sets; verify; hand each set to the core, which records
     every instruction durably and pays it once; acknowledge the set.
  3. Post what the core has not reported yet, in one signed result set:
     first results, and refunds of cross-bank credits that have come back
     (Art. 22). The core marks them reported once the gateway's receipt is
     in, so a crash after the acknowledgement loses no result.

Invariants:
- The runner keeps nothing on disk. Sets live in memory only for the round;
  the core system is the bank's durable record of what it has paid.
- A crash anywhere is safe: an unacknowledged set is redelivered after its
  lease, identical; the core answers a redelivered instruction with the
  outcome it recorded, so nothing is paid twice; results already posted are
  no-ops when posted again.
- Transport failures are retried with exponential backoff and jitter, a
  bounded number of times.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from connectors.base import CoreAdapter, PaymentOutcome, register
from connectors.faults import NO_FAULTS, Fault, Faults
from gateway.core import GATEWAY_AUDIENCE
from gateway.envelope import open_envelope, seal
from keys.signing import Signer
from keys.trust import TrustStore
from ykt.v1 import exchange_pb2, services_pb2, services_pb2_grpc

_logger = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    # Another puller's identical answer was being recorded at the same time.
    grpc.StatusCode.ABORTED,
}


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, grpc.RpcError) and exc.code() in _TRANSIENT


transport_retry = retry(
    retry=retry_if_exception(_transient),
    wait=wait_exponential_jitter(multiplier=0.2, max=5.0),
    stop=stop_after_attempt(6),
    reraise=True,
)


# The most results one signed result set carries.
REPORT_BATCH = 1000


@register("grpc-pull")
class GrpcPullRunner:
    name = "grpc-pull"

    def __init__(
        self,
        channel: grpc.Channel,
        core: CoreAdapter,
        signer: Signer,
        trust: TrustStore,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        faults: Faults = NO_FAULTS,
    ) -> None:
        self._stub = services_pb2_grpc.BankServiceStub(channel)
        self._faults = faults
        self._core = core
        self._signer = signer
        self._trust = trust
        self._clock = clock
        self.bank_code = signer.identity.org

    @transport_retry
    def _call(self, method: Callable[..., Any], request: Any) -> Any:
        self._faults.drop_call()
        return method(request)

    def run_once(self) -> int:
        moved = self._answer_checks()
        moved += self._pay_instructions()
        moved += self._report_outcomes()
        return moved

    def run_forever(self, stop: threading.Event, idle_seconds: float = 0.5) -> None:
        while not stop.is_set():
            try:
                moved = self.run_once()
            except grpc.RpcError as exc:
                _logger.warning(
                    "exchange round failed", extra={"status": exc.code().name}
                )
                moved = 0
            if not moved:
                stop.wait(idle_seconds)

    def _pull(
        self, method: Callable[..., Any], request: Any, kind: type[M]
    ) -> list[tuple[str, M]]:
        """Pull leased sets; verify each signature before parsing it."""
        response = self._call(method, request)
        return [
            (
                leased.lease_id,
                open_envelope(
                    leased.set,
                    kind,
                    trust=self._trust,
                    audience=self.bank_code,
                    now=self._clock(),
                ).message,
            )
            for leased in response.sets
        ]

    # 1. Account checks.
    def _answer_checks(self) -> int:
        pulled = self._pull(
            self._stub.PullAccountChecks,
            services_pb2.PullAccountChecksRequest(max_sets=5),
            exchange_pb2.AccountCheckSet,
        )
        for lease_id, check_set in pulled:
            self._faults.slow_down()
            answer = exchange_pb2.AccountCheckResultSet(
                check_set_id=check_set.header.subject_id
            )
            statuses = self._core.verify_accounts(check_set.checks)
            for check, status in zip(check_set.checks, statuses, strict=True):
                answer.results.add(check_id=check.check_id, status=status)
            envelope = self._seal(answer, f"{check_set.header.subject_id}.answer")
            self._call(
                self._stub.PostAccountCheckResults,
                services_pb2.PostAccountCheckResultsRequest(result_set=envelope),
            )
            self._call(
                self._stub.Acknowledge,
                services_pb2.AcknowledgeRequest(
                    set_id=check_set.header.subject_id, lease_id=lease_id
                ),
            )
        return len(pulled)

    # 2. Payment instructions.
    def _pay_instructions(self) -> int:
        pulled = self._pull(
            self._stub.PullInstructions,
            services_pb2.PullInstructionsRequest(max_sets=5),
            exchange_pb2.InstructionSet,
        )
        for lease_id, instruction_set in pulled:
            set_id = instruction_set.header.subject_id
            self._core.pay_all(instruction_set.instructions, origin=set_id)
            self._faults.crash_if(Fault.CRASH_BEFORE_ACK)
            self._call(
                self._stub.Acknowledge,
                services_pb2.AcknowledgeRequest(set_id=set_id, lease_id=lease_id),
            )
        return len(pulled)

    # 3. Outcomes not reported yet: results, and refunds of cross-bank credits.
    def _report_outcomes(self) -> int:
        outcomes = self._core.unreported(self._clock())
        for start in range(0, len(outcomes), REPORT_BATCH):
            part = outcomes[start : start + REPORT_BATCH]
            subject = f"results-{secrets.token_hex(8)}"
            self._post_results(part, subject)
            if self._faults.hits(Fault.DUPLICATE_RESULTS):
                self._post_results(part, subject)
            self._core.mark_reported(part)
        return len(outcomes)

    def _post_results(self, outcomes: list[PaymentOutcome], subject_id: str) -> None:
        result_set = exchange_pb2.ResultSet()
        for outcome in outcomes:
            result = result_set.results.add(
                instruction_id=outcome.instruction_id,
                status=outcome.status,
                reason_code=outcome.reason_code,
                bank_reference=outcome.bank_reference,
            )
            result.completed_at.FromDatetime(outcome.completed_at)
        envelope = self._seal(result_set, subject_id)
        self._call(
            self._stub.PostResults, services_pb2.PostResultsRequest(result_set=envelope)
        )

    def _seal(self, message: Any, subject_id: str) -> Any:
        return seal(
            self._signer,
            message,
            audience=GATEWAY_AUDIENCE,
            subject_id=subject_id,
            now=self._clock(),
        )
