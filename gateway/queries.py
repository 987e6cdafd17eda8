"""What departments, finance and auditors may read about batches.

A department reads only its own batches; a batch of another organisation is
reported as not found, so ids cannot be probed. Finance and auditors read
every batch. Answers name records by id and row and carry no personal data.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy import Row, func, select

from gateway.core import GatewayCore
from gateway.errors import NotFoundError, PermissionDeniedError
from gateway.reasons import ReasonCode, message_zh
from gateway.states import BATCH_STATES, OUTCOMES
from gateway.store import schema
from keys.identity import Identity, Role
from ykt.v1 import batch_pb2, exchange_pb2, services_pb2

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


def reasons_of(
    codes: Iterable[str], *, id_stored_as_number: bool = False
) -> list[batch_pb2.Reason]:
    """Reason codes with the message department staff act on."""
    reasons = []
    for code in filter(None, codes):
        try:
            message = message_zh(
                ReasonCode(code), id_stored_as_number=id_stored_as_number
            )
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
                reasons=reasons_of(row.reasons.split(";")),
                amount_fen=row.amount_fen or 0,
            )
        if len(page) < PAGE:
            return
        last_row = page[-1].row


MAX_LINEAGE = 64


def record_lineage(
    core: GatewayCore, caller: Identity, record_id: str
) -> services_pb2.GetRecordLineageResponse:
    """A record and its corrections (Art. 22), from the original to the latest.

    Walks back along ``corrects_record_id`` to the original, then forward
    through every record that corrects one already found. A department sees
    only lineages of its own batches; anything else is "not found".
    """
    if caller.role not in READERS:
        raise PermissionDeniedError("this role may not read records")
    records, batches = schema.records, schema.batches
    columns = (
        records.c.record_id,
        records.c.batch_id,
        records.c.row,
        records.c.state,
        records.c.reasons,
        records.c.corrects_record_id,
        records.c.amount_fen,
        batches.c.department_org,
        batches.c.submitted_at,
    )
    joined = select(*columns).join(batches, batches.c.batch_id == records.c.batch_id)

    with core.engine.connect() as connection:
        # 1. Back to the original.
        current = connection.execute(
            joined.where(records.c.record_id == record_id)
        ).one_or_none()
        if current is None or (
            caller.role is Role.DEPARTMENT and current.department_org != caller.org
        ):
            raise NotFoundError("no such record")
        for _ in range(MAX_LINEAGE):
            if current.corrects_record_id is None:
                break
            parent = connection.execute(
                joined.where(records.c.record_id == current.corrects_record_id)
            ).one_or_none()
            if parent is None or parent.department_org != current.department_org:
                break
            current = parent

        # 2. Forward through the corrections, breadth first.
        entries = [current]
        frontier = [current.record_id]
        while frontier and len(entries) < MAX_LINEAGE:
            children = connection.execute(
                joined.where(
                    records.c.corrects_record_id.in_(frontier),
                    batches.c.department_org == current.department_org,
                ).order_by(batches.c.submitted_at, records.c.row)
            ).all()
            entries.extend(children)
            frontier = [child.record_id for child in children]

        # 3. Oldest first: the original, then every correction in the order
        #    it was submitted, whichever branch it corrects.
        entries[1:] = sorted(entries[1:], key=lambda e: (e.submitted_at, e.row))

        # 4. Every result the bank reported for each.
        ids = [entry.record_id for entry in entries]
        results = connection.execute(
            select(schema.results)
            .where(schema.results.c.instruction_id.in_(ids))
            .order_by(schema.results.c.result_id)
        ).all()

    response = services_pb2.GetRecordLineageResponse()
    for entry in entries[:MAX_LINEAGE]:
        item = response.entries.add(
            record_id=entry.record_id,
            batch_id=entry.batch_id,
            row=entry.row,
            outcome=OUTCOMES[entry.state],
            reasons=reasons_of(entry.reasons.split(";")),
            corrects_record_id=entry.corrects_record_id or "",
            amount_fen=entry.amount_fen or 0,
        )
        for result in results:
            if result.instruction_id == entry.record_id:
                event = item.results.add(
                    status=RESULT_STATUSES[result.status],
                    reason_code=result.reason_code,
                    bank_reference=result.bank_reference,
                )
                event.completed_at.FromDatetime(result.completed_at)
    return response


RESULT_STATUSES = {
    "PAID": exchange_pb2.RESULT_STATUS_PAID,
    "FAILED": exchange_pb2.RESULT_STATUS_FAILED,
    "RETURNED": exchange_pb2.RESULT_STATUS_RETURNED,
}
