"""The states of records, batches and exchange sets, and what departments see.

A record's life (Art. 18-22):

    REJECTED                      gateway rules refused it (final)
    CHECKING -> REJECTED          the agent bank refused the account (final)
    CHECKING -> INSTRUCTED        the account is confirmed; an instruction is out
    INSTRUCTED -> PAID | FAILED   the bank's result
    PAID -> RETURNED              a cross-bank credit refunded days later

REJECTED, FAILED and RETURNED records may be corrected by a new batch. PAID is
final unless a return arrives. The full history of results is kept.
"""

from __future__ import annotations

import enum

from ykt.v1 import batch_pb2


class RecordState(enum.StrEnum):
    CHECKING = "CHECKING"
    INSTRUCTED = "INSTRUCTED"
    REJECTED = "REJECTED"
    PAID = "PAID"
    FAILED = "FAILED"
    RETURNED = "RETURNED"


FINAL_STATES = frozenset(
    {RecordState.REJECTED, RecordState.PAID, RecordState.FAILED, RecordState.RETURNED}
)

# States whose claim on (person, policy, period) is released (Art. 22).
RELEASED_STATES = frozenset(
    {RecordState.REJECTED, RecordState.FAILED, RecordState.RETURNED}
)


class SetKind(enum.StrEnum):
    ACCOUNT_CHECK = "account-check"
    INSTRUCTION = "instruction"


class SetState(enum.StrEnum):
    # An instruction set whose batch's funds have not reached the bank yet
    # (Art. 19): it is signed and stored, but not handed out.
    HELD = "HELD"
    READY = "READY"
    LEASED = "LEASED"
    ACKED = "ACKED"
    DONE = "DONE"
    # Delivered the most times allowed without an acknowledgement: handed
    # out no more until an operator looks (a dead letter).
    DEAD = "DEAD"


OUTCOMES: dict[str, batch_pb2.Outcome.ValueType] = {
    RecordState.CHECKING: batch_pb2.OUTCOME_PENDING,
    RecordState.INSTRUCTED: batch_pb2.OUTCOME_PENDING,
    RecordState.REJECTED: batch_pb2.OUTCOME_REJECTED,
    RecordState.PAID: batch_pb2.OUTCOME_PAID,
    RecordState.FAILED: batch_pb2.OUTCOME_FAILED,
    RecordState.RETURNED: batch_pb2.OUTCOME_RETURNED,
}

BATCH_STATES: dict[str, batch_pb2.BatchState.ValueType] = {
    "VALIDATED": batch_pb2.BATCH_STATE_VALIDATED,
    "IN_PAYMENT": batch_pb2.BATCH_STATE_IN_PAYMENT,
    "CLOSED": batch_pb2.BATCH_STATE_CLOSED,
}
