"""The agent bank's deadlines, as pure arithmetic on working days.

The rules (渝财规〔2023〕6号), each ending at the END of a local working day,
i.e. at 24:00 Beijing time, which is the next local midnight:
  - pay-by (Art. 19-20): once the funds release reaches the agent bank, the
    bank pays within 1 working day. The deadline is the end of the first
    working day after the local day the funds arrived.
  - report-by (Art. 21): the bank reports results within 3 working days of
    paying. The deadline is the end of the 3rd working day after the local day
    of the payment, but never later than the end of the 3rd working day after
    the pay-by day.
  - refund report-by (Art. 22): the bank reports a cross-bank refund within
    3 working days. The deadline is the end of the 3rd working day after the
    local day the refund reached the agent bank.

Invariants:
  - Inputs and outputs are aware datetimes; every output is in UTC. A naive
    datetime is refused: reading it as UTC instead of Beijing time, or the
    other way round, shifts it by 8 hours and can move it across a day.
  - Working days are counted on local dates in Asia/Shanghai, the zone the
    regulation's days are in.
  - A duty is met if done strictly before its deadline instant; at the
    deadline instant the next day has begun.
  - Every deadline carries ``provisional`` from the calendar. A deadline
    derived from a provisional one is provisional too.
  - A breach is final: a report that arrives late does not turn BREACHED
    into MET.

Threats answered:
  - The payment time is the bank's own claim. A bank that pays late, or claims
    a late payment time, gains no time to report: report-by is capped by the
    pay-by day, which only the funds' arrival decides.
  - Two instants passed in the wrong order would silently compute the wrong
    deadline, so functions taking more than one instant take them by keyword.

Nothing here touches a database or the clock: "now" is always passed in.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from gateway.workdays import Answer, WorkingCalendar

LOCAL_ZONE = ZoneInfo("Asia/Shanghai")

PAY_WORKING_DAYS = 1  # Art. 20
REPORT_WORKING_DAYS = 3  # Art. 21
REFUND_REPORT_WORKING_DAYS = 3  # Art. 22


class DeadlineKind(enum.StrEnum):
    """Which duty a deadline is for; the values are stored and used as labels."""

    PAY = "pay"  # Art. 20
    REPORT = "report"  # Art. 21
    REFUND_REPORT = "refund_report"  # Art. 22


class DeadlineStatus(enum.StrEnum):
    """Where a duty stands; the values are the metric label values."""

    ON_TIME = "on_time"  # not yet met, and the deadline is further than the margin
    AT_RISK = "at_risk"  # not yet met, and now is inside the margin before it
    BREACHED = "breached"  # not met by the deadline, or met after it
    MET = "met"  # met strictly before the deadline


@dataclass(frozen=True)
class Deadline:
    """The end of ``working_day``, local time, as the UTC instant ``due``."""

    due: dt.datetime
    working_day: dt.date
    provisional: bool


def local_date(instant: dt.datetime) -> dt.date:
    """The date in Beijing time of an aware instant."""
    _require_aware(instant)
    return instant.astimezone(LOCAL_ZONE).date()


def end_of_local_day(day: dt.date) -> dt.datetime:
    """24:00 Beijing time on ``day`` (the next local midnight), in UTC."""
    midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), LOCAL_ZONE)
    return midnight.astimezone(dt.UTC)


def pay_by(calendar: WorkingCalendar, funds_arrived_at: dt.datetime) -> Deadline:
    """Art. 20: the end of the first working day after the funds arrived."""
    answer = calendar.add_working_days(local_date(funds_arrived_at), PAY_WORKING_DAYS)
    return _end_of(answer)


def report_by(
    calendar: WorkingCalendar,
    *,
    funds_arrived_at: dt.datetime,
    paid_at: dt.datetime,
) -> Deadline:
    """Art. 21: 3 working days after the payment, capped by the pay-by day."""
    paying = pay_by(calendar, funds_arrived_at)

    after_payment = calendar.add_working_days(local_date(paid_at), REPORT_WORKING_DAYS)
    after_pay_by = calendar.add_working_days(paying.working_day, REPORT_WORKING_DAYS)

    # Counting the same number of working days never reorders two start days,
    # so which bound is earlier depends only on the payment day against the
    # pay-by day. That comparison is uncertain only if pay-by is provisional.
    earlier = min(after_payment, after_pay_by, key=lambda answer: answer.value)
    provisional = earlier.provisional or paying.provisional
    return _end_of(Answer(earlier.value, provisional))


def refund_report_by(
    calendar: WorkingCalendar, refund_arrived_at: dt.datetime
) -> Deadline:
    """Art. 22: 3 working days after the refund reached the agent bank."""
    answer = calendar.add_working_days(
        local_date(refund_arrived_at), REFUND_REPORT_WORKING_DAYS
    )
    return _end_of(answer)


def deadline_status(
    due: dt.datetime,
    *,
    now: dt.datetime,
    margin: dt.timedelta,
    met_at: dt.datetime | None,
) -> DeadlineStatus:
    """Where a duty stands against its deadline ``due``.

    ``margin`` is how long before ``due`` an unmet duty counts as AT_RISK;
    ``met_at`` is when the duty was done, or None while it is not.
    """
    for instant in (due, now, met_at):
        if instant is not None:
            _require_aware(instant)
    if margin < dt.timedelta(0):
        raise ValueError("the at-risk margin cannot be negative")

    if met_at is not None:
        return DeadlineStatus.MET if met_at < due else DeadlineStatus.BREACHED

    if now >= due:
        return DeadlineStatus.BREACHED
    if now >= due - margin:
        return DeadlineStatus.AT_RISK
    return DeadlineStatus.ON_TIME


def _end_of(answer: Answer[dt.date]) -> Deadline:
    return Deadline(
        due=end_of_local_day(answer.value),
        working_day=answer.value,
        provisional=answer.provisional,
    )


def _require_aware(instant: dt.datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("a naive datetime has no zone; give an aware one")
