"""Funds release (Art. 19): the treasury's transfer starts the bank's clock.

The department applies for the funds, and the treasury transfers them to the
agent bank's payout account. A department (for its own batch) or the county
finance bureau records that the funds arrived. Until then the batch's
instruction sets are HELD: signed and stored, never handed to the bank, so a
bank is never asked to pay money it does not hold.

Invariants:
  * A release is recorded once per batch. Recording it again is a no-op that
    returns the first record; it never moves the clock.
  * A release cannot lie in the future, and cannot precede the batch.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from gateway import deadline_store
from gateway.core import GatewayCore
from gateway.deadlines import Deadline, pay_by
from gateway.errors import InvalidArgumentError, NotFoundError, PermissionDeniedError
from gateway.registry import REFERENCE, county_of
from gateway.states import SetState
from gateway.store import schema
from keys.identity import Identity, Role


@dataclass(frozen=True)
class Release:
    batch_id: str
    released_at: dt.datetime
    already_recorded: bool
    pay_by: Deadline


def record_release(
    core: GatewayCore,
    caller: Identity,
    batch_id: str,
    released_at: dt.datetime | None,
    treasury_reference: str,
) -> Release:
    """Record that a batch's funds reached its agent bank; free its sets."""
    now = core.now()
    when = released_at or now
    if not REFERENCE.match(treasury_reference):
        raise InvalidArgumentError("treasury_reference is missing or malformed")
    if when > now:
        raise InvalidArgumentError("a release cannot lie in the future")

    with core.engine.begin() as connection:
        batch = connection.execute(
            select(
                schema.batches.c.department_org,
                schema.batches.c.county,
                schema.batches.c.submitted_at,
            ).where(schema.batches.c.batch_id == batch_id)
        ).one_or_none()
        if batch is None or not _may_release(
            caller, batch.department_org, batch.county
        ):
            raise NotFoundError("no such batch")
        if when < batch.submitted_at:
            raise InvalidArgumentError("a release cannot precede its batch")

        releases = schema.funds_releases
        existing = connection.execute(
            select(releases.c.released_at).where(releases.c.batch_id == batch_id)
        ).one_or_none()
        if existing is not None:
            return Release(
                batch_id,
                existing.released_at,
                already_recorded=True,
                pay_by=pay_by(core.calendar, existing.released_at),
            )
        connection.execute(
            insert(releases).values(
                batch_id=batch_id,
                released_at=when,
                treasury_reference=treasury_reference,
                recorded_by=caller.org,
                recorded_at=now,
            )
        )
        sets = schema.exchange_sets
        held = sets.c.batch_id == batch_id, sets.c.state == SetState.HELD.value
        freed = list(connection.execute(select(sets.c.set_id).where(*held)).scalars())
        connection.execute(update(sets).where(*held).values(state=SetState.READY.value))
        deadline_store.start_payment_clocks(core, connection, freed, when)
        core.audit(
            connection,
            caller.org,
            "funds.released",
            batch_id,
            f"released_at={when.isoformat()} sets={len(freed)}",
        )
    return Release(
        batch_id, when, already_recorded=False, pay_by=pay_by(core.calendar, when)
    )


def _may_release(caller: Identity, department_org: str, county: str) -> bool:
    if caller.role is Role.DEPARTMENT:
        return caller.org == department_org
    if caller.role is Role.FINANCE:
        try:
            return county_of(caller) == county
        except PermissionDeniedError:
            return False
    raise PermissionDeniedError("only a department or finance records a release")
