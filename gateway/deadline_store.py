"""The agent banks' deadlines (Art. 19-22), kept in the store and watched.

``gateway.deadlines`` computes when a duty falls due; this module records
each duty when it starts, marks it met when the bank does its part, and
records a breach when a deadline passes. Three duties:
  * pay (per instruction set): starts when the set is handed out with its
    batch's funds at the bank; met when every instruction has a PAID or
    FAILED result, at the latest payment time the bank reports.
  * report (per instruction set): 3 working days after the payment, never
    later than 3 working days after pay-by; met when the last result of the
    set arrives at the gateway.
  * refund report (per returned record): 3 working days after the refund
    reached the bank; met when the RETURNED result arrives.

Invariants:
  * A breach, once recorded, stays recorded: ``breached_at`` is only ever
    set, never cleared, even when the bank reports late.
  * A deadline's ``due_at`` only moves earlier (report-by, once the payment
    time is known), never later.
  * Every deadline says whether the calendar could only guess
    (``provisional``); the guess is visible in the API, the CLI and metrics.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from gateway.core import GatewayCore
from gateway.deadlines import (
    DeadlineKind,
    DeadlineStatus,
    deadline_status,
    pay_by,
    refund_report_by,
    report_by,
)
from gateway.states import SetKind
from gateway.store import schema


@dataclass(frozen=True)
class DeadlineView:
    kind: str
    bank_code: str
    subject_id: str
    due_at: dt.datetime
    status: DeadlineStatus
    provisional: bool
    met_at: dt.datetime | None
    breached: bool


def start_payment_clocks(
    core: GatewayCore,
    connection: Connection,
    set_ids: Sequence[str],
    funds_arrived_at: dt.datetime,
) -> None:
    """Open the pay and report deadlines of instruction sets just handed out."""
    if not set_ids:
        return
    sets = schema.exchange_sets
    rows = connection.execute(
        select(sets.c.set_id, sets.c.bank_code, sets.c.batch_id).where(
            sets.c.set_id.in_(set_ids)
        )
    ).all()
    paying = pay_by(core.calendar, funds_arrived_at)
    reporting = report_by(
        core.calendar, funds_arrived_at=funds_arrived_at, paid_at=paying.due
    )
    for row in rows:
        for kind, deadline in (
            (DeadlineKind.PAY, paying),
            (DeadlineKind.REPORT, reporting),
        ):
            connection.execute(
                insert(schema.deadlines).values(
                    kind=kind.value,
                    subject_id=row.set_id,
                    bank_code=row.bank_code,
                    batch_id=row.batch_id,
                    due_at=deadline.due,
                    provisional=deadline.provisional,
                    met_at=None,
                    breached_at=None,
                )
            )
    if paying.provisional or reporting.provisional:
        core.on_provisional_deadline()


def record_results(
    core: GatewayCore,
    connection: Connection,
    set_ids: Iterable[str],
    returned: Iterable[tuple[str, str, str, dt.datetime]],
    now: dt.datetime,
) -> None:
    """Mark duties met after results arrive; open refund-report duties.

    ``set_ids`` are the instruction sets with no instruction left open: the
    caller has just counted them, and counting again here cost as much again
    on every post of results. ``returned`` holds (record id, bank, batch id,
    refund time) per RETURNED result just recorded.
    """
    for set_id in set(set_ids):
        _settle_set(core, connection, set_id, now)

    for record_id, bank_code, batch_id, refund_at in returned:
        deadline = refund_report_by(core.calendar, refund_at)
        if deadline.provisional:
            core.on_provisional_deadline()
        exists = connection.execute(
            select(func.count()).where(
                schema.deadlines.c.kind == DeadlineKind.REFUND_REPORT.value,
                schema.deadlines.c.subject_id == record_id,
            )
        ).scalar_one()
        if exists:
            continue
        connection.execute(
            insert(schema.deadlines).values(
                kind=DeadlineKind.REFUND_REPORT.value,
                subject_id=record_id,
                bank_code=bank_code,
                batch_id=batch_id,
                due_at=deadline.due,
                provisional=deadline.provisional,
                met_at=now,
                breached_at=now if now >= deadline.due else None,
            )
        )


def _settle_set(
    core: GatewayCore, connection: Connection, set_id: str, now: dt.datetime
) -> None:
    """Meet the pay and report duties of a set with no open instruction."""
    records, results = schema.records, schema.results
    # The set's instruction ids from its index, then each one's result by
    # key. Written as a join, the planner could walk every result of the bank.
    last_payment = connection.execute(
        select(func.max(results.c.completed_at)).where(
            results.c.instruction_id.in_(
                select(records.c.record_id).where(
                    records.c.instruction_set_id == set_id
                )
            ),
            results.c.status.in_(["PAID", "FAILED"]),
        )
    ).scalar_one()
    table = schema.deadlines
    pay = connection.execute(
        select(table).where(
            table.c.kind == DeadlineKind.PAY.value, table.c.subject_id == set_id
        )
    ).one_or_none()
    if pay is None:
        return
    paid_at = last_payment or now
    _meet(connection, DeadlineKind.PAY, set_id, pay.due_at, paid_at)

    # The report is due 3 working days after the payment, never later than
    # the cap stored when the clock started.
    release = connection.execute(
        select(schema.funds_releases.c.released_at).where(
            schema.funds_releases.c.batch_id == pay.batch_id
        )
    ).scalar_one()
    report = report_by(core.calendar, funds_arrived_at=release, paid_at=paid_at)
    connection.execute(
        update(table)
        .where(
            table.c.kind == DeadlineKind.REPORT.value,
            table.c.subject_id == set_id,
            table.c.due_at > report.due,
        )
        .values(due_at=report.due)
    )
    report_row = connection.execute(
        select(table.c.due_at).where(
            table.c.kind == DeadlineKind.REPORT.value, table.c.subject_id == set_id
        )
    ).scalar_one()
    _meet(connection, DeadlineKind.REPORT, set_id, report_row, now)


def _meet(
    connection: Connection,
    kind: DeadlineKind,
    subject_id: str,
    due_at: dt.datetime,
    met_at: dt.datetime,
) -> None:
    table = schema.deadlines
    values: dict[str, object] = {"met_at": met_at}
    connection.execute(
        update(table)
        .where(
            table.c.kind == kind.value,
            table.c.subject_id == subject_id,
            table.c.met_at.is_(None),
        )
        .values(**values)
    )
    if met_at >= due_at:
        connection.execute(
            update(table)
            .where(
                table.c.kind == kind.value,
                table.c.subject_id == subject_id,
                table.c.breached_at.is_(None),
            )
            .values(breached_at=met_at)
        )


def record_breaches(core: GatewayCore) -> int:
    """Record every deadline that passed unmet; returns how many were new."""
    now = core.now()
    table = schema.deadlines
    with core.engine.begin() as connection:
        result = connection.execute(
            update(table)
            .where(
                table.c.breached_at.is_(None),
                table.c.due_at <= now,
                or_(table.c.met_at.is_(None), table.c.met_at >= table.c.due_at),
            )
            .values(breached_at=now)
        )
        if result.rowcount:
            core.audit(
                connection,
                core.signer.identity.org,
                "deadlines.breached",
                "deadlines",
                f"newly_breached={result.rowcount}",
            )
    return result.rowcount


def list_deadlines(
    core: GatewayCore,
    *,
    bank_code: str | None = None,
    at_risk_only: bool = False,
    breached_only: bool = False,
) -> list[DeadlineView]:
    """Deadlines, soonest first, with their status now."""
    # A breach seen is a breach recorded, even if the bank later claims an
    # earlier payment time: so reading records the breaches due by now.
    record_breaches(core)
    now = core.now()
    margin = dt.timedelta(hours=core.settings.deadline_margin_hours)
    table = schema.deadlines
    query = select(table).order_by(table.c.due_at, table.c.kind, table.c.subject_id)
    if bank_code:
        query = query.where(table.c.bank_code == bank_code)
    if breached_only:
        query = query.where(table.c.breached_at.is_not(None))
    if at_risk_only:
        query = query.where(
            and_(table.c.met_at.is_(None), table.c.breached_at.is_(None))
        )
    with core.engine.connect() as connection:
        rows = connection.execute(query).all()
    views = []
    for row in rows:
        status = deadline_status(row.due_at, now=now, margin=margin, met_at=row.met_at)
        if row.breached_at is not None:
            status = DeadlineStatus.BREACHED
        if at_risk_only and status is not DeadlineStatus.AT_RISK:
            continue
        views.append(
            DeadlineView(
                kind=row.kind,
                bank_code=row.bank_code,
                subject_id=row.subject_id,
                due_at=row.due_at,
                status=status,
                provisional=row.provisional,
                met_at=row.met_at,
                breached=row.breached_at is not None,
            )
        )
    return views


def deadline_counts(core: GatewayCore) -> list[tuple[str, str, str, int]]:
    """(bank, kind, status, count) of open or breached deadlines, for metrics."""
    counts: dict[tuple[str, str, str], int] = {}
    for view in list_deadlines(core):
        if view.status is DeadlineStatus.MET:
            continue
        key = (view.bank_code, view.kind, view.status.value)
        counts[key] = counts.get(key, 0) + 1
    return [(*key, count) for key, count in sorted(counts.items())]


def instruction_sets_of(connection: Connection, batch_id: str) -> list[str]:
    sets = schema.exchange_sets
    return list(
        connection.execute(
            select(sets.c.set_id).where(
                sets.c.batch_id == batch_id, sets.c.kind == SetKind.INSTRUCTION.value
            )
        ).scalars()
    )
