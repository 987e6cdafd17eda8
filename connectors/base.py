"""The plug-in points of the bank side: core adapters and connectors.

A *core adapter* is the bank's own core system as the connector sees it. It
must be idempotent by instruction id: asked to pay an instruction it has
already paid, it answers with the recorded outcome and pays nothing. That is
what makes redelivery safe: the gateway may deliver a set twice, the bank
never pays twice.

A *connector* moves sets and results between the gateway and one bank in the
bank's own style (gRPC pull, fixed-width files, ISO 20022 files). Connectors
are found by name in ``CONNECTORS``, so a new bank's style needs no change to
the core.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ykt.v1 import exchange_pb2


@dataclass(frozen=True)
class PaymentOutcome:
    instruction_id: str
    status: exchange_pb2.ResultStatus.ValueType
    reason_code: str
    bank_reference: str
    completed_at: dt.datetime
    # The message that carried the instruction (a set or file id), so a
    # later report, a refund above all, can name where the payment came from.
    origin: str = ""


class CoreAdapter(Protocol):
    def verify_accounts(
        self, checks: Sequence[exchange_pb2.AccountCheck]
    ) -> list[exchange_pb2.AccountCheckStatus.ValueType]:
        """The answer to each account check of a set, in order."""
        ...

    def pay_all(
        self, instructions: Sequence[exchange_pb2.Instruction], *, origin: str = ""
    ) -> list[PaymentOutcome]:
        """Pay each instruction of a set once per instruction id; the outcome
        of each, in order. An id already paid gets its recorded outcome.

        Every outcome is stored durably before this returns, whether the core
        commits them one by one or together, and stays *unreported* until
        ``mark_reported``.
        """
        ...

    def unreported(self, now: dt.datetime) -> list[PaymentOutcome]:
        """Outcomes the gateway has not been told: first results of payments,
        and refunds of cross-bank credits that have come back (Art. 22)."""
        ...

    def mark_reported(self, outcomes: list[PaymentOutcome]) -> None:
        """Record that the gateway has a receipt for these outcomes."""
        ...


class Connector(Protocol):
    name: str

    def run_once(self) -> int:
        """Do one round of exchange; return how many items moved."""
        ...


CONNECTORS: dict[str, Callable[..., Connector]] = {}


def register(
    name: str,
) -> Callable[[Callable[..., Connector]], Callable[..., Connector]]:
    def decorator(factory: Callable[..., Connector]) -> Callable[..., Connector]:
        CONNECTORS[name] = factory
        return factory

    return decorator
