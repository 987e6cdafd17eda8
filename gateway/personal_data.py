"""Reading personal data back out of the store: one record, or a public notice.

This is the only module that opens a batch's sealed chunks for people other
than the agent bank. Everything it reads leaves as masking types
(``gateway.masking``), masked for the caller's audience, except where a rule
below says the caller may see it in clear.

Who sees what:
  * a department: its own records, in clear (it submitted them);
  * finance: masked; in clear only with ``unmask`` and the unmask permission
    (``Settings.unmask_orgs``), for one record at a time;
  * auditors: masked, always;
  * the public: the notice (公示), masked with the public rules, which hide
    the birth date in an ID number.

Every read is written to the audit log with the record or batch id, who read
it and whether in clear. A batch past its retention has no keys: its
records answer as shredded, with no personal data at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, select

from gateway.core import GatewayCore
from gateway.disclosure import Notice, NoticeRow, write_csv, write_xlsx
from gateway.errors import NotFoundError, PermissionDeniedError, PreconditionError
from gateway.masking import (
    DEFAULT_POLICY,
    AccountNumber,
    Audience,
    IdNumber,
    PersonName,
)
from gateway.normalize import normalize_account, normalize_id_number, normalize_name
from gateway.queries import reasons_of
from gateway.states import OUTCOMES, RecordState
from gateway.store import schema
from keys.identity import Identity, Role
from keys.keystore import KeyShreddedError
from ykt.v1 import batch_pb2, services_pb2

_AUDIENCES = {
    Role.DEPARTMENT: Audience.DEPARTMENT,
    Role.FINANCE: Audience.FINANCE,
    Role.AUDITOR: Audience.AUDITOR,
}


def get_record(
    core: GatewayCore, caller: Identity, record_id: str, unmask: bool
) -> services_pb2.GetRecordResponse:
    """One record, its personal data masked for the caller (see above)."""
    audience = _AUDIENCES.get(caller.role)
    if audience is None:
        raise PermissionDeniedError("this role may not read records")
    records, batches = schema.records, schema.batches
    with core.engine.begin() as connection:
        row = connection.execute(
            select(
                records.c.record_id,
                records.c.batch_id,
                records.c.row,
                records.c.chunk_index,
                records.c.state,
                records.c.reasons,
                records.c.amount_fen,
                batches.c.department_org,
                batches.c.shredded_at,
            )
            .join(batches, batches.c.batch_id == records.c.batch_id)
            .where(records.c.record_id == record_id)
        ).one_or_none()
        if row is None or (
            caller.role is Role.DEPARTMENT and row.department_org != caller.org
        ):
            raise NotFoundError("no such record")
        in_clear = caller.role is Role.DEPARTMENT
        if unmask and not in_clear:
            if caller.role is not Role.FINANCE or (
                caller.org not in core.settings.unmask_orgs
            ):
                raise PermissionDeniedError("unmasking needs the unmask permission")
            in_clear = True

        response = services_pb2.GetRecordResponse(
            record_id=row.record_id,
            batch_id=row.batch_id,
            row=row.row,
            outcome=OUTCOMES[row.state],
            reasons=reasons_of(row.reasons.split(";")),
            amount_fen=row.amount_fen or 0,
            masked=not in_clear,
            shredded=row.shredded_at is not None,
        )
        if row.shredded_at is None:
            record = _record_at(
                core, connection, row.batch_id, row.chunk_index, row.row
            )
            name = PersonName(normalize_name(record.name))
            id_number = IdNumber(normalize_id_number(record.id_number))
            account = AccountNumber(normalize_account(record.account_number))
            if in_clear:
                response.name = name.dangerously_reveal()
                response.id_number = id_number.dangerously_reveal()
                response.account_number = account.dangerously_reveal()
            else:
                rules = DEFAULT_POLICY.rules(audience)
                response.name = name.masked(rules)
                response.id_number = id_number.masked(rules)
                response.account_number = account.masked(rules)
        core.audit(
            connection,
            caller.org,
            "record.unmasked" if in_clear and unmask else "record.read",
            record_id,
            f"audience={audience.value} clear={in_clear}",
        )
    return response


def write_public_notice(
    core: GatewayCore,
    batch_id: str,
    path: Path,
    *,
    contact: str,
    department_org: str,
    xlsx: bool = False,
) -> int:
    """The 公示 list of a batch's paid records, masked for the public.

    Runs on the gateway host for the department that owns the batch
    (``ykt disclose``); the audit log names that department. Returns the
    number of people listed.
    """
    batches, policies = schema.batches, schema.policies
    with core.engine.begin() as connection:
        batch = connection.execute(
            select(
                batches.c.period,
                batches.c.shredded_at,
                batches.c.department_org,
                policies.c.policy_name,
                policies.c.department_name,
            )
            .join(policies, policies.c.policy_code == batches.c.policy_code)
            .where(batches.c.batch_id == batch_id)
        ).one_or_none()
        if batch is None or batch.department_org != department_org:
            raise NotFoundError("no such batch")
        if batch.shredded_at is not None:
            raise PreconditionError("the batch is past its retention; nothing to list")
        notice = Notice(
            department_name=batch.department_name,
            policy_name=batch.policy_name,
            period=batch.period,
            contact=contact,
        )
        rows = _paid_rows(core, connection, batch_id)
        written = (write_xlsx if xlsx else write_csv)(rows, path, notice)
        core.audit(
            connection,
            department_org,
            "batch.disclosed",
            batch_id,
            f"people={written} format={'xlsx' if xlsx else 'csv'}",
        )
    return written


def _paid_rows(
    core: GatewayCore, connection: Connection, batch_id: str
) -> Iterator[NoticeRow]:
    records = schema.records
    paid = {
        row.row: row.amount_fen
        for row in connection.execute(
            select(records.c.row, records.c.amount_fen).where(
                records.c.batch_id == batch_id,
                records.c.state == RecordState.PAID.value,
            )
        )
    }
    for record in _records(core, connection, batch_id):
        if record.row in paid:
            yield NoticeRow(
                name=PersonName(normalize_name(record.name)),
                id_number=IdNumber(normalize_id_number(record.id_number)),
                amount_fen=paid[record.row],
            )


def _records(
    core: GatewayCore, connection: Connection, batch_id: str
) -> Iterator[batch_pb2.PaymentRecord]:
    chunks = schema.batch_chunks
    indexes = connection.execute(
        select(chunks.c.chunk_index)
        .where(chunks.c.batch_id == batch_id)
        .order_by(chunks.c.chunk_index)
    ).scalars()
    for index in list(indexes):
        yield from _chunk(core, connection, batch_id, index).records


def _record_at(
    core: GatewayCore, connection: Connection, batch_id: str, index: int, row: int
) -> batch_pb2.PaymentRecord:
    for record in _chunk(core, connection, batch_id, index).records:
        if record.row == row:
            return record
    raise NotFoundError("no such record")


def _chunk(
    core: GatewayCore, connection: Connection, batch_id: str, index: int
) -> batch_pb2.PaymentRecordList:
    sealed = connection.execute(
        select(schema.batch_chunks.c.sealed).where(
            schema.batch_chunks.c.batch_id == batch_id,
            schema.batch_chunks.c.chunk_index == index,
        )
    ).scalar_one()
    try:
        key = core.data_key(connection, batch_id)
    except KeyShreddedError as exc:
        raise PreconditionError("the batch is past its retention") from exc
    raw = key.open(sealed, f"{batch_id}:chunk:{index}".encode())
    return batch_pb2.PaymentRecordList.FromString(raw)
