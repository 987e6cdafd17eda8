"""Deadline arithmetic (Art. 20-22) and the status of a duty against its deadline.

Times are written in Beijing time and compared in UTC: a deadline at the end
of 8 October 2026 is 2026-10-09 00:00 +08:00, i.e. 2026-10-08 16:00 UTC.
The 2026 schedule used here is summarised in tests/test_workdays.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.deadlines import (
    Deadline,
    DeadlineKind,
    DeadlineStatus,
    deadline_status,
    end_of_local_day,
    local_date,
    pay_by,
    refund_report_by,
    report_by,
)
from gateway.workdays import WorkingCalendar

BEIJING = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkingCalendar.load()
D = dt.date.fromisoformat


def beijing(text: str) -> dt.datetime:
    """An aware UTC instant from a Beijing wall-clock time 'YYYY-MM-DD HH:MM'."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=BEIJING).astimezone(dt.UTC)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def expected(day: str, provisional: bool = False) -> Deadline:
    """A deadline at the end of ``day``: 16:00 UTC that day, Beijing midnight."""
    return Deadline(
        due=utc(f"{day} 16:00"), working_day=D(day), provisional=provisional
    )


@pytest.mark.parametrize(
    ("funds_arrived_at", "deadline"),
    [
        pytest.param(
            beijing("2026-03-05 10:00"), expected("2026-03-06"), id="plain-weekday"
        ),
        pytest.param(
            beijing("2026-03-06 23:59"), expected("2026-03-09"), id="friday-night"
        ),
        pytest.param(
            beijing("2026-09-30 10:00"),
            expected("2026-10-08"),
            id="eve-of-national-day",
        ),
        pytest.param(
            utc("2026-09-29 17:30"),
            expected("2026-10-08"),
            id="utc-29-sep-is-beijing-30-sep",
        ),
        pytest.param(
            beijing("2026-10-03 09:00"), expected("2026-10-08"), id="on-a-holiday"
        ),
        pytest.param(
            beijing("2026-10-09 16:00"),
            expected("2026-10-10"),
            id="adjusted-saturday-is-pay-day",
        ),
        pytest.param(
            beijing("2026-02-13 11:00"),
            expected("2026-02-14"),
            id="spring-festival-eve-saturday",
        ),
        pytest.param(
            beijing("2026-02-14 11:00"),
            expected("2026-02-24"),
            id="across-spring-festival",
        ),
        pytest.param(
            beijing("2025-12-31 15:00"),
            expected("2026-01-04"),
            id="new-year-adjusted-sunday",
        ),
        pytest.param(
            beijing("2026-12-31 15:00"),
            expected("2027-01-04", provisional=True),
            id="year-end-into-uncovered-2027",
        ),
    ],
)
def test_pay_by(funds_arrived_at: dt.datetime, deadline: Deadline) -> None:
    assert pay_by(CALENDAR, funds_arrived_at) == deadline


@pytest.mark.parametrize(
    ("funds_arrived_at", "paid_at", "deadline"),
    [
        pytest.param(
            beijing("2026-09-30 09:00"),
            beijing("2026-09-30 15:00"),
            expected("2026-10-10"),
            id="paid-same-day-across-national-day",
        ),
        pytest.param(
            beijing("2026-09-30 09:00"),
            beijing("2026-10-08 23:30"),
            expected("2026-10-12"),
            id="paid-late-on-pay-by-day",
        ),
        pytest.param(
            beijing("2026-09-30 09:00"),
            beijing("2026-10-20 10:00"),
            expected("2026-10-12"),
            id="paid-after-pay-by-is-capped",
        ),
        pytest.param(
            beijing("2026-09-30 09:00"),
            beijing("2026-10-09 00:30"),
            expected("2026-10-12"),
            id="paid-just-after-pay-by-is-capped",
        ),
        pytest.param(
            beijing("2026-02-13 09:00"),
            beijing("2026-02-14 10:00"),
            expected("2026-02-26"),
            id="across-spring-festival",
        ),
        pytest.param(
            beijing("2026-12-23 09:00"),
            beijing("2026-12-24 10:00"),
            expected("2026-12-29"),
            id="before-year-end-certain",
        ),
        pytest.param(
            beijing("2026-12-29 09:00"),
            beijing("2026-12-30 10:00"),
            expected("2027-01-05", provisional=True),
            id="across-year-end-provisional",
        ),
    ],
)
def test_report_by(
    funds_arrived_at: dt.datetime, paid_at: dt.datetime, deadline: Deadline
) -> None:
    assert (
        report_by(CALENDAR, funds_arrived_at=funds_arrived_at, paid_at=paid_at)
        == deadline
    )


def test_report_by_is_provisional_when_pay_by_is() -> None:
    # The bank's payment time lies before the recorded arrival of the funds
    # (two clocks disagree). Counting from the payment stays inside 2026 and
    # is certain, but pay-by falls in uncovered 2027, so whether the cap
    # applies is not certain, and neither is the deadline.
    deadline = report_by(
        CALENDAR,
        funds_arrived_at=beijing("2026-12-31 09:00"),
        paid_at=beijing("2026-12-24 10:00"),
    )

    assert deadline == expected("2026-12-29", provisional=True)


@pytest.mark.parametrize(
    ("refund_arrived_at", "deadline"),
    [
        pytest.param(
            beijing("2026-09-30 10:00"),
            expected("2026-10-10"),
            id="across-national-day",
        ),
        pytest.param(
            beijing("2026-02-17 10:00"),
            expected("2026-02-26"),
            id="arrived-during-spring-festival",
        ),
        pytest.param(
            utc("2026-02-13 16:30"),
            expected("2026-02-26"),
            id="utc-13-feb-is-beijing-14-feb",
        ),
        pytest.param(
            utc("2026-02-13 15:30"),
            expected("2026-02-25"),
            id="utc-13-feb-is-still-beijing-13-feb",
        ),
        pytest.param(
            beijing("2026-12-30 10:00"),
            expected("2027-01-05", provisional=True),
            id="across-year-end-provisional",
        ),
    ],
)
def test_refund_report_by(refund_arrived_at: dt.datetime, deadline: Deadline) -> None:
    assert refund_report_by(CALENDAR, refund_arrived_at) == deadline


def test_deadlines_are_in_utc() -> None:
    deadline = pay_by(CALENDAR, beijing("2026-09-30 10:00"))

    assert deadline.due.utcoffset() == dt.timedelta(0)
    assert deadline.due.astimezone(BEIJING) == dt.datetime(
        2026, 10, 9, 0, 0, tzinfo=BEIJING
    )


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            lambda: pay_by(CALENDAR, dt.datetime(2026, 9, 30, 10)), id="pay-by"
        ),
        pytest.param(
            lambda: report_by(
                CALENDAR,
                funds_arrived_at=beijing("2026-09-30 10:00"),
                paid_at=dt.datetime(2026, 9, 30, 11),
            ),
            id="report-by",
        ),
        pytest.param(
            lambda: refund_report_by(CALENDAR, dt.datetime(2026, 9, 30, 10)),
            id="refund-report-by",
        ),
        pytest.param(
            lambda: deadline_status(
                utc("2026-10-08 16:00"),
                now=dt.datetime(2026, 10, 8, 12),
                margin=dt.timedelta(hours=4),
                met_at=None,
            ),
            id="status",
        ),
    ],
)
def test_naive_datetimes_are_refused(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="naive"):
        call()


# --- status -------------------------------------------------------------------

DUE = utc("2026-10-08 16:00")  # end of 8 October 2026, Beijing time
MARGIN = dt.timedelta(hours=4)


@pytest.mark.parametrize(
    ("now", "met_at", "status"),
    [
        pytest.param(
            beijing("2026-10-08 09:00"), None, DeadlineStatus.ON_TIME, id="morning"
        ),
        pytest.param(
            beijing("2026-10-08 19:59"),
            None,
            DeadlineStatus.ON_TIME,
            id="just-outside-margin",
        ),
        pytest.param(
            beijing("2026-10-08 20:00"),
            None,
            DeadlineStatus.AT_RISK,
            id="margin-begins",
        ),
        pytest.param(
            beijing("2026-10-08 23:59"), None, DeadlineStatus.AT_RISK, id="last-minute"
        ),
        pytest.param(
            beijing("2026-10-09 00:00"),
            None,
            DeadlineStatus.BREACHED,
            id="at-the-deadline",
        ),
        pytest.param(
            beijing("2026-10-12 10:00"), None, DeadlineStatus.BREACHED, id="days-late"
        ),
        pytest.param(
            beijing("2026-10-08 21:00"),
            beijing("2026-10-08 20:30"),
            DeadlineStatus.MET,
            id="met-inside-margin",
        ),
        pytest.param(
            beijing("2026-10-20 10:00"),
            beijing("2026-10-08 23:59"),
            DeadlineStatus.MET,
            id="met-stays-met",
        ),
        pytest.param(
            beijing("2026-10-09 10:00"),
            beijing("2026-10-09 00:00"),
            DeadlineStatus.BREACHED,
            id="met-at-the-deadline-instant",
        ),
        pytest.param(
            beijing("2026-10-20 10:00"),
            beijing("2026-10-09 08:00"),
            DeadlineStatus.BREACHED,
            id="late-report-stays-breached",
        ),
    ],
)
def test_deadline_status(
    now: dt.datetime, met_at: dt.datetime | None, status: DeadlineStatus
) -> None:
    assert deadline_status(DUE, now=now, margin=MARGIN, met_at=met_at) is status


def test_status_moves_on_time_then_at_risk_then_breached_and_stays() -> None:
    clock = [beijing(t) for t in ("2026-10-08 12:00", "2026-10-08 22:00")]
    clock += [beijing("2026-10-09 01:00")]

    seen = [deadline_status(DUE, now=t, margin=MARGIN, met_at=None) for t in clock]
    after_late_report = deadline_status(
        DUE,
        now=beijing("2026-10-09 02:00"),
        margin=MARGIN,
        met_at=beijing("2026-10-09 01:30"),
    )

    assert seen == [
        DeadlineStatus.ON_TIME,
        DeadlineStatus.AT_RISK,
        DeadlineStatus.BREACHED,
    ]
    assert after_late_report is DeadlineStatus.BREACHED


def test_zero_margin_never_reports_at_risk() -> None:
    just_before = DUE - dt.timedelta(seconds=1)

    status = deadline_status(DUE, now=just_before, margin=dt.timedelta(0), met_at=None)

    assert status is DeadlineStatus.ON_TIME


def test_negative_margin_is_refused() -> None:
    with pytest.raises(ValueError, match="margin"):
        deadline_status(DUE, now=DUE, margin=-MARGIN, met_at=None)


def test_stored_and_label_values_are_stable() -> None:
    # The deadlines table, the ykt_deadlines metric and its alert rules use
    # these strings; renaming one breaks them silently.
    assert [s.value for s in DeadlineStatus] == [
        "on_time",
        "at_risk",
        "breached",
        "met",
    ]
    assert [k.value for k in DeadlineKind] == ["pay", "report", "refund_report"]


def test_local_date_and_end_of_local_day() -> None:
    assert local_date(utc("2026-09-30 15:59")) == D("2026-09-30")
    assert local_date(utc("2026-09-30 16:00")) == D("2026-10-01")
    assert end_of_local_day(D("2026-12-31")) == utc("2026-12-31 16:00")


# --- properties ---------------------------------------------------------------

INSTANTS = st.datetimes(
    min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2028, 12, 31)
).map(lambda naive: naive.replace(tzinfo=dt.UTC))


@given(
    funds=INSTANTS,
    delay=st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=40)),
)
def test_report_by_never_exceeds_the_cap(
    funds: dt.datetime, delay: dt.timedelta
) -> None:
    paying = pay_by(CALENDAR, funds)
    cap = CALENDAR.add_working_days(paying.working_day, 3)

    reporting = report_by(CALENDAR, funds_arrived_at=funds, paid_at=funds + delay)

    assert paying.due > funds
    assert reporting.working_day <= cap.value
    assert reporting.due == end_of_local_day(reporting.working_day)
    assert CALENDAR.is_working_day(reporting.working_day).value
