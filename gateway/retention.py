"""Retention: once a closed batch's retention has passed, destroy its keys.

The no-retention duty: after the retention period (``Settings.retention_days``
after the batch closed, 180 days by default) nobody may be able to read a
beneficiary's name, ID number or account from the gateway, including from
a backup of its database taken earlier. The gateway does not delete rows
(submitted content is immutable); it destroys the keys (crypto-shredding):

  1. An open batch's data key is wrapped under the KEK of ``open-YYYY-MM``,
     the month it was submitted.
  2. When the batch closes, its data key is wrapped again, under the KEK of
     ``until-YYYY-MM``, the month its retention ends; the ``open`` wrapping is
     overwritten in the row.
  3. An ``open`` KEK of a past month that no batch uses any more is destroyed:
     the old wrappings in earlier backups become useless.
  4. An ``until`` KEK whose month has passed is destroyed, and its batches are
     marked shredded.

What stays, as the long-term record: amounts, states, reason codes, keyed
digests, content digests, the signed manifests and the banks' signed
results, and the audit log. Statistics, audit and disclosure of amounts keep
working; nothing personal can be read back.

Invariants:
  * A KEK is destroyed only when every batch wrapped under it is past its
    retention (``until``) or has been re-wrapped (``open``).
  * Retention runs once at a time, also with several gateways on one
    PostgreSQL (a transaction-scoped advisory lock; the loser skips).
  * Every re-wrap and every destruction is in the audit log.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select, text, update

from gateway.core import GatewayCore
from gateway.store import schema

_logger = logging.getLogger(__name__)

_LOCK_KEY = 0x796B7452  # "yktR": one retention run at a time
OPEN = "open"
UNTIL = "until"


def open_epoch(submitted_at: dt.datetime) -> str:
    """The epoch an open batch's data key is wrapped under."""
    return f"{OPEN}-{submitted_at:%Y-%m}"


def until_epoch(closed_at: dt.datetime, retention_days: int) -> str:
    """The epoch of the month in which a closed batch's retention ends."""
    return f"{UNTIL}-{closed_at + dt.timedelta(days=retention_days):%Y-%m}"


@dataclass(frozen=True)
class RetentionReport:
    rewrapped: int
    shredded_batches: int
    destroyed_epochs: tuple[str, ...]
    skipped: bool = False


def run(core: GatewayCore) -> RetentionReport:
    """One retention pass (see the module docstring)."""
    now = core.now()
    this_month = f"{now:%Y-%m}"
    with core.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            got = connection.execute(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _LOCK_KEY}
            ).scalar_one()
            if not got:
                return RetentionReport(0, 0, (), skipped=True)

        # 2. Closed batches still under their open epoch: wrap again.
        batches = schema.batches
        closed = connection.execute(
            select(
                batches.c.batch_id,
                batches.c.kek_id,
                batches.c.wrapped_key,
                batches.c.closed_at,
            ).where(
                batches.c.closed_at.is_not(None),
                batches.c.kek_id.like(f"kek-{OPEN}-%"),
            )
        ).all()
        for row in closed:
            context = row.batch_id.encode()
            data_key = core.keystore.unwrap(
                row.kek_id, row.wrapped_key, context=context
            )
            epoch = until_epoch(row.closed_at, core.settings.retention_days)
            kek_id, wrapped = core.keystore.wrap(data_key, epoch=epoch, context=context)
            connection.execute(
                update(batches)
                .where(batches.c.batch_id == row.batch_id)
                .values(kek_id=kek_id, wrapped_key=wrapped)
            )
            core.audit(
                connection,
                core.signer.identity.org,
                "retention.rewrapped",
                row.batch_id,
                f"from={row.kek_id} to={kek_id}",
            )

        # 3-4. Epochs whose time has come.
        in_use = set(connection.execute(select(batches.c.kek_id).distinct()).scalars())
        doomed = []
        for epoch in core.keystore.epochs():
            kind, _, month = epoch.partition("-")
            if month >= this_month:
                continue
            if kind == OPEN and f"kek-{epoch}" in in_use:
                continue
            doomed.append(epoch)

        shredded = 0
        for epoch in doomed:
            result = connection.execute(
                update(batches)
                .where(
                    batches.c.kek_id == f"kek-{epoch}",
                    batches.c.shredded_at.is_(None),
                )
                .values(shredded_at=now)
            )
            shredded += result.rowcount
            core.audit(
                connection,
                core.signer.identity.org,
                "retention.shredded",
                f"kek-{epoch}",
                f"batches={result.rowcount}",
            )

    # Destroy the keys only once the transaction that records it committed;
    # a crash between the two leaves keys that the next run destroys.
    for epoch in doomed:
        core.keystore.shred(epoch)
        _logger.warning("key-encryption key destroyed", extra={"epoch": epoch})
    core.forget_data_keys()
    return RetentionReport(len(closed), shredded, tuple(doomed))
