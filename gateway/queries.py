"""What departments, finance and auditors may read about batches.

A department reads only its own batches; a batch of another organisation is
reported as not found, so ids cannot be probed. Finance and auditors read
every batch. Answers name records by id and row and carry no personal data.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Row, func, select

from gateway.core import GatewayCore
from gateway.errors import NotFoundError, PermissionDeniedError
from gateway.reasons import MESSAGES_ZH, ReasonCode
from gateway.states import BATCH_STATES, OUTCOMES
from gateway.store import schema
from keys.identity import Identity, Role
from ykt.v1 import batch_pb2, services_pb2

READERS = {Role.DEPARTMENT, Role.FINANCE, Role.AUDITOR}
PAGE = 5000


def _batch_row(
    core: GatewayCore, caller: Identity, batch_id: str
) -> Row[tuple[object, ...]]:
    if caller.role not in READERS:
        raise PermissionDeniedError("this role may not read batches")
    with core.engine.connect() as connection:
        row = connection.execute(
            select(schema.batches).where(schema.batches.c.batch_id == batch_id)
        ).one_or_none()
    if row is None or (
        caller.role is Role.DEPARTMENT and row.department_org != caller.org
    ):
        raise NotFoundError("no such batch")
    return row


def get_batch(
    core: GatewayCore, caller: Identity, batch_id: str
) -> services_pb2.GetBatchResponse:
    row = _batch_row(core, caller, batch_id)
    with core.engine.connect() as connection:
        counts = connection.execute(
            select(schema.records.c.state, func.count())
            .where(schema.records.c.batch_id == batch_id)
            .group_by(schema.records.c.state)
        ).all()
    response = services_pb2.GetBatchResponse(
        batch_id=row.batch_id,
        county=row.county,
        department=row.department,
        policy_code=row.policy_code,
        period=row.period,
        state=BATCH_STATES[row.state],
        record_count=row.record_count,
        total_amount_fen=row.total_amount_fen,
        content_digest=row.content_digest,
    )
    response.submitted_at.FromDatetime(row.submitted_at)
    for state, count in counts:
        name = batch_pb2.Outcome.Name(OUTCOMES[state]).removeprefix("OUTCOME_")
        response.outcome_counts[name] = response.outcome_counts[name] + count
    return response


def reasons_of(text: str) -> list[batch_pb2.Reason]:
    reasons = []
    for code in filter(None, text.split(";")):
        try:
            message = MESSAGES_ZH[ReasonCode(code)]
        except ValueError:
            message = ""
        reasons.append(batch_pb2.Reason(code=code, message=message))
    return reasons


def list_records(
    core: GatewayCore, caller: Identity, batch_id: str
) -> Iterator[services_pb2.ListRecordsResponse]:
    _batch_row(core, caller, batch_id)
    records = schema.records
    last_row = 0
    while True:
        with core.engine.connect() as connection:
            page = connection.execute(
                select(
                    records.c.record_id,
                    records.c.row,
                    records.c.state,
                    records.c.reasons,
                    records.c.amount_fen,
                )
                .where(records.c.batch_id == batch_id, records.c.row > last_row)
                .order_by(records.c.row)
                .limit(PAGE)
            ).all()
        for row in page:
            yield services_pb2.ListRecordsResponse(
                record_id=row.record_id,
                row=row.row,
                outcome=OUTCOMES[row.state],
                reasons=reasons_of(row.reasons),
                amount_fen=row.amount_fen or 0,
            )
        if len(page) < PAGE:
            return
        last_row = page[-1].row
