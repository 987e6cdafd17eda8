"""The working-day calendar: package data, schedule files, provisional answers.

The 2026 cases rest on the State Council's 2026 schedule as the pinned
``chinese_calendar`` package holds it:
  - New Year: 1-3 January off, Sunday 4 January worked.
  - Spring Festival: 15-23 February off (Sunday to the next Monday),
    Saturdays 14 and 28 February worked.
  - National Day with Mid-Autumn: 1-7 October off, Sunday 20 September and
    Saturday 10 October worked.
Schedule files for 2027 below are made up for the tests; they are no real
State Council notice.
"""

from __future__ import annotations

import argparse
import datetime as dt
import textwrap
from pathlib import Path

import chinese_calendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.workdays import (
    Answer,
    ScheduleError,
    WorkingCalendar,
    add_calendar_commands,
)

D = dt.date.fromisoformat
CALENDAR = WorkingCalendar.load()
PACKAGE_YEARS = sorted({day.year for day in chinese_calendar.holidays})
FIRST_UNCOVERED_YEAR = max(PACKAGE_YEARS) + 1


def write_schedule(directory: Path, body: str, name: str = "schedule.toml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return path


# A made-up 2027 schedule: New Year's Day off, Saturday 2 January worked.
MADE_UP_2027 = """
year = 2027
source = "made-up 2027 schedule for tests"
holidays = ["2027-01-01"]
working_weekends = ["2027-01-02"]
"""


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        pytest.param("2026-03-05", 1, "2026-03-06", id="plain-thursday-to-friday"),
        pytest.param("2026-03-06", 1, "2026-03-09", id="plain-friday-skips-weekend"),
        pytest.param("2026-09-30", 1, "2026-10-08", id="national-day-week-skipped"),
        pytest.param("2026-10-09", 1, "2026-10-10", id="adjusted-saturday-10-oct"),
        pytest.param("2026-10-10", 1, "2026-10-12", id="sunday-after-adjusted-sat"),
        pytest.param("2026-09-19", 1, "2026-09-20", id="adjusted-sunday-20-sep"),
        pytest.param("2026-09-24", 1, "2026-09-28", id="mid-autumn-friday-off"),
        pytest.param("2026-02-13", 1, "2026-02-14", id="spring-festival-eve-sat"),
        pytest.param("2026-02-14", 1, "2026-02-24", id="spring-festival-skipped"),
        pytest.param("2026-02-12", 3, "2026-02-24", id="spring-festival-three"),
        pytest.param("2026-02-27", 1, "2026-02-28", id="spring-festival-late-sat"),
        pytest.param("2026-02-28", 1, "2026-03-02", id="after-late-adjusted-sat"),
        pytest.param("2025-12-31", 1, "2026-01-04", id="new-year-adjusted-sunday"),
        pytest.param("2026-01-01", 1, "2026-01-04", id="from-a-holiday"),
    ],
)
def test_add_working_days_on_the_2026_schedule(
    start: str, n: int, expected: str
) -> None:
    assert CALENDAR.add_working_days(D(start), n) == Answer(D(expected), False)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        pytest.param("2026-02-14", True, id="adjusted-saturday-spring"),
        pytest.param("2026-02-16", False, id="spring-festival-monday"),
        pytest.param("2026-02-23", False, id="spring-festival-last-monday"),
        pytest.param("2026-02-15", False, id="spring-festival-sunday"),
        pytest.param("2026-10-10", True, id="adjusted-saturday-october"),
        pytest.param("2026-10-01", False, id="national-day"),
        pytest.param("2026-10-07", False, id="national-day-last-day"),
        pytest.param("2026-10-08", True, id="first-day-back"),
        pytest.param("2026-03-07", False, id="plain-saturday"),
        pytest.param("2026-03-09", True, id="plain-monday"),
    ],
)
def test_is_working_day_on_the_2026_schedule(day: str, working: bool) -> None:
    assert CALENDAR.is_working_day(D(day)) == Answer(working, False)


@pytest.mark.parametrize(
    "month_day",
    [
        pytest.param("01-01", id="new-years-day"),
        pytest.param("05-01", id="labour-day"),
        pytest.param("10-01", id="national-day-1"),
        pytest.param("10-02", id="national-day-2"),
        pytest.param("10-03", id="national-day-3"),
    ],
)
def test_provisional_fixed_holidays_are_off(month_day: str) -> None:
    # The first uncovered year in which this holiday falls on a weekday, so
    # that the weekend rule alone would not make it a day off.
    year = next(
        y
        for y in range(FIRST_UNCOVERED_YEAR, FIRST_UNCOVERED_YEAR + 14)
        if D(f"{y}-{month_day}").weekday() < 5
    )

    answer = CALENDAR.is_working_day(D(f"{year}-{month_day}"))

    assert answer == Answer(False, True)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        pytest.param("2100-01-02", False, id="saturday"),
        pytest.param("2100-01-03", False, id="sunday"),
        pytest.param("2100-01-04", True, id="monday"),
        pytest.param("2100-05-03", True, id="day-after-labour-day"),
        pytest.param("2100-10-04", True, id="fourth-of-october"),
    ],
)
def test_provisional_ordinary_days_far_beyond_coverage(day: str, working: bool) -> None:
    assert CALENDAR.is_working_day(D(day)) == Answer(working, True)


def test_far_future_year_end_is_provisional() -> None:
    # 1 January 2100 is a Friday: provisionally off, then a weekend.
    assert CALENDAR.add_working_days(D("2099-12-31"), 1) == Answer(
        D("2100-01-04"), True
    )


def test_first_uncovered_year_is_provisional_from_the_last_day_before() -> None:
    last_day = dt.date(FIRST_UNCOVERED_YEAR - 1, 12, 31)

    answer = CALENDAR.add_working_days(last_day, 1)

    assert answer.value.year == FIRST_UNCOVERED_YEAR
    assert answer.provisional


def test_provisional_if_an_uncovered_day_was_passed_on_the_way() -> None:
    # The result lies in the package's first year; the days before it do not.
    before_coverage = dt.date(min(PACKAGE_YEARS) - 1, 12, 30)

    answer = CALENDAR.add_working_days(before_coverage, 5)

    assert CALENDAR.covers(answer.value.year)
    assert answer.provisional


def test_provisional_across_a_gap_between_schedule_files(tmp_path: Path) -> None:
    later = write_schedule(
        tmp_path,
        """
        year = 2028
        source = "made-up 2028 schedule for tests"
        holidays = []
        working_weekends = []
        """,
    )
    calendar = WorkingCalendar.load([later])

    # 2027 has no schedule; 3 January 2028 is a Monday in the 2028 file.
    answer = calendar.add_working_days(D("2027-12-30"), 2)

    assert answer == Answer(D("2028-01-03"), True)
    assert calendar.add_working_days(D("2028-01-03"), 1) == Answer(
        D("2028-01-04"), False
    )


def test_a_count_inside_covered_years_is_not_provisional() -> None:
    last_day = dt.date(FIRST_UNCOVERED_YEAR - 1, 12, 1)

    assert not CALENDAR.add_working_days(last_day, 5).provisional


class TestYearEnd2026:
    def test_without_a_2027_schedule_it_is_provisional(self) -> None:
        assert not CALENDAR.covers(2027), (
            "chinese_calendar now covers 2027: check this case against the "
            "published schedule and update it"
        )

        assert CALENDAR.add_working_days(D("2026-12-31"), 1) == Answer(
            D("2027-01-04"), True
        )
        assert CALENDAR.is_working_day(D("2027-01-04")) == Answer(True, True)

    def test_with_a_2027_schedule_file_it_is_certain(self, tmp_path: Path) -> None:
        calendar = WorkingCalendar.load([write_schedule(tmp_path, MADE_UP_2027)])

        assert calendar.add_working_days(D("2026-12-31"), 1) == Answer(
            D("2027-01-02"), False
        )
        assert calendar.covers(2027)
        assert calendar.coverage()[2027].startswith("made-up 2027 schedule")


def test_schedule_file_overrides_the_package_for_its_year(tmp_path: Path) -> None:
    # Contradicts the package: 8 October is off too, and Saturday 10 October
    # is not an adjusted working day.
    contradicting = write_schedule(
        tmp_path,
        """
        year = 2026
        source = "corrected 2026 schedule for tests"
        holidays = ["2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06",
                    "2026-10-07", "2026-10-08"]
        working_weekends = []
        """,
    )

    calendar = WorkingCalendar.load([contradicting])

    assert calendar.add_working_days(D("2026-09-30"), 1) == Answer(
        D("2026-10-09"), False
    )
    assert calendar.is_working_day(D("2026-10-10")) == Answer(False, False)
    assert calendar.is_working_day(D("2026-02-16")) == Answer(True, False)
    assert "corrected 2026 schedule" in calendar.coverage()[2026]
    assert CALENDAR.add_working_days(D("2026-09-30"), 1).value == D("2026-10-08")


def test_package_years_are_read_from_its_data() -> None:
    coverage = CALENDAR.coverage()

    assert sorted(coverage) == PACKAGE_YEARS
    assert CALENDAR.covers(min(PACKAGE_YEARS))
    assert not CALENDAR.covers(min(PACKAGE_YEARS) - 1)
    assert all("chinese_calendar" in source for source in coverage.values())


@pytest.mark.parametrize(
    ("body", "line", "fragment"),
    [
        pytest.param(
            """
            year = 2027
            source = "unterminated
            holidays = []
            working_weekends = []
            """,
            2,
            "not valid TOML",
            id="toml-syntax-error",
        ),
        pytest.param(
            """
            year = 2027
            source = "x"
            holidays = []
            working_weekends = [
            """,
            4,
            "not valid TOML",
            id="toml-unclosed-at-end",
        ),
        pytest.param(
            """
            year = 2027
            source = "x"
            holidays = [
                "2027-01-01",
                "2027-02-30",
            ]
            working_weekends = []
            """,
            5,
            "'2027-02-30' is not a date",
            id="impossible-date",
        ),
        pytest.param(
            """
            year = 2027
            source = "x"
            holidays = ["20270101"]
            working_weekends = []
            """,
            3,
            "'20270101' is not a date",
            id="compact-date-spelling",
        ),
        pytest.param(
            """
            year = 2027
            source = "x"
            holidays = [2027-01-01]
            working_weekends = []
            """,
            3,
            "write each date quoted",
            id="unquoted-toml-date",
        ),
        pytest.param(
            """
            year = 2027
            source = "x"
            holidays = ["2027-01-01",
                        "2026-10-01"]
            working_weekends = []
            """,
            4,
            "outside year 2027",
            id="holiday-outside-the-year",
        ),
        pytest.param(
            """
            year = 2027
            source = "x"
            holidays = ["2027-01-01"]
            working_weekends = ["2027-02-06",
                                "2027-02-03"]
            """,
            5,
            "must be a Saturday or a Sunday",
            id="working-weekend-on-a-wednesday",
        ),
        pytest.param(
            """
            year = 2027
            source = "x"
            holidays = ["2027-01-01", "2027-01-02"]
            working_weekends = []
            """,
            3,
            "2027-01-02 is a Saturday",
            id="holiday-on-a-saturday",
        ),
        pytest.param(
            """
            year = 2027
            source = "x"
            holidays = [
                "2027-01-01",
                "2027-01-01",
            ]
            working_weekends = []
            """,
            5,
            "listed twice",
            id="date-listed-twice",
        ),
        pytest.param(
            """
            year = 2027
            holidays = []
            working_weekends = []
            """,
            3,
            "missing key 'source'",
            id="missing-source",
        ),
        pytest.param(
            """
            year = "2027"
            source = "x"
            holidays = []
            working_weekends = []
            """,
            1,
            "year must be a whole number",
            id="year-as-string",
        ),
        pytest.param(
            """
            year = 2027
            source = "x"
            holidays = "2027-01-01"
            working_weekends = []
            """,
            3,
            "must be a list",
            id="holidays-not-a-list",
        ),
        pytest.param(
            """
            year = 2027
            source = "x"
            holidays = []
            working_weekends = []
            working_weekend = ["2027-02-06"]
            """,
            5,
            "unknown key 'working_weekend'",
            id="misspelt-extra-key",
        ),
        pytest.param(
            """
            year = 2027
            source = "  "
            holidays = []
            working_weekends = []
            """,
            2,
            "source must name",
            id="blank-source",
        ),
    ],
)
def test_malformed_schedule_is_refused_naming_the_line(
    tmp_path: Path, body: str, line: int, fragment: str
) -> None:
    path = write_schedule(tmp_path, body)

    with pytest.raises(ScheduleError) as refused:
        WorkingCalendar.load([path])

    assert refused.value.line == line
    assert str(refused.value).startswith(f"{path}, line {line}: ")
    assert fragment in str(refused.value)


def test_non_utf8_schedule_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "gbk.toml"
    path.write_bytes('year = 2027\nsource = "国务院"\n'.encode("gbk"))

    with pytest.raises(ScheduleError, match=r", line 2: not UTF-8"):
        WorkingCalendar.load([path])


def test_two_files_for_one_year_are_refused(tmp_path: Path) -> None:
    first = write_schedule(tmp_path, MADE_UP_2027, "a.toml")
    second = write_schedule(tmp_path, MADE_UP_2027, "b.toml")

    with pytest.raises(ScheduleError) as refused:
        WorkingCalendar.load([first, second])

    assert str(refused.value).startswith(f"{second}, line 1: ")
    assert str(first) in str(refused.value)


def test_missing_schedule_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    with pytest.raises(ScheduleError, match=r"absent\.toml: cannot read it"):
        WorkingCalendar.load([path])


def test_a_datetime_is_refused_as_a_day() -> None:
    with pytest.raises(TypeError, match="Asia/Shanghai"):
        CALENDAR.is_working_day(dt.datetime(2026, 10, 8, 23, 0, tzinfo=dt.UTC))


@pytest.mark.parametrize("n", [pytest.param(0, id="zero"), pytest.param(-1, id="neg")])
def test_add_working_days_refuses_counts_below_one(n: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CALENDAR.add_working_days(D("2026-10-08"), n)


# --- properties ---------------------------------------------------------------

DAYS = st.dates(
    min_value=dt.date(min(PACKAGE_YEARS) - 2, 1, 1),
    max_value=dt.date(FIRST_UNCOVERED_YEAR + 2, 12, 31),
)


@given(day=DAYS, n=st.integers(min_value=1, max_value=40))
def test_result_is_a_working_day_strictly_after(day: dt.date, n: int) -> None:
    result = CALENDAR.add_working_days(day, n).value

    assert result > day
    assert CALENDAR.is_working_day(result).value
    judged = [day + dt.timedelta(days=i) for i in range(1, (result - day).days + 1)]
    assert sum(CALENDAR.is_working_day(d).value for d in judged) == n


@given(day=DAYS, n=st.integers(min_value=1, max_value=40))
def test_result_is_monotone_in_n(day: dt.date, n: int) -> None:
    shorter = CALENDAR.add_working_days(day, n)
    longer = CALENDAR.add_working_days(day, n + 1)

    assert shorter.value < longer.value
    assert longer.provisional >= shorter.provisional


@given(day=DAYS, n=st.integers(min_value=1, max_value=40))
def test_provisional_exactly_when_an_uncovered_year_was_judged(
    day: dt.date, n: int
) -> None:
    answer = CALENDAR.add_working_days(day, n)

    years_judged = range((day + dt.timedelta(days=1)).year, answer.value.year + 1)
    assert answer.provisional == any(not CALENDAR.covers(y) for y in years_judged)


# --- command line -------------------------------------------------------------


def run_cli(argv: list[str]) -> int:
    root = argparse.ArgumentParser(prog="ykt")
    commands = root.add_subparsers(dest="command", required=True)
    add_calendar_commands(commands)
    args = root.parse_args(argv)
    result: int = args.func(args)
    return result


@pytest.mark.parametrize(
    ("argv", "printed"),
    [
        pytest.param(
            ["add-working-days", "2026-09-30", "1"], "2026-10-08\n", id="certain"
        ),
        pytest.param(
            ["add-working-days", "2026-12-31", "1"],
            "2027-01-04 provisional\n",
            id="provisional",
        ),
        pytest.param(
            ["add-working-days", "2026-02-13", "2"], "2026-02-24\n", id="spring"
        ),
    ],
)
def test_cli_add_working_days(
    capsys: pytest.CaptureFixture[str], argv: list[str], printed: str
) -> None:
    assert run_cli(["calendar", *argv]) == 0
    assert capsys.readouterr().out == printed


def test_cli_add_working_days_with_a_schedule_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_schedule(tmp_path, MADE_UP_2027)

    status = run_cli(
        ["calendar", "add-working-days", "2026-12-31", "1", "--schedule", str(path)]
    )

    assert status == 0
    assert capsys.readouterr().out == "2027-01-02\n"


def test_cli_coverage_lists_years_and_sources(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_schedule(tmp_path, MADE_UP_2027)

    assert run_cli(["calendar", "coverage", "--schedule", str(path)]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{min(PACKAGE_YEARS)} chinese_calendar ")
    assert lines[-1] == f"2027 made-up 2027 schedule for tests ({path})"
    assert len(lines) == len(PACKAGE_YEARS) + 1


def test_cli_bad_schedule_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_schedule(tmp_path, MADE_UP_2027.replace("2027-01-02", "2027-01-04"))

    status = run_cli(["calendar", "coverage", "--schedule", str(path)])

    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert f"{path}, line 4: " in captured.err


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["add-working-days", "2026-13-01", "1"], id="bad-date"),
        pytest.param(["add-working-days", "2026-10-08", "0"], id="zero-days"),
        pytest.param(["add-working-days", "2026-10-08", "x"], id="not-a-number"),
    ],
)
def test_cli_refuses_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli(["calendar", *argv])

    assert exited.value.code == 2
