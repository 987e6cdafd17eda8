"""The working-day calendar of mainland China, with adjusted working days (调休).

The regulation counts the agent bank's duties in working days (工作日): pay
within 1 working day of the funds release (Art. 19-20), report results within
3 (Art. 21), report a cross-bank refund within 3 (Art. 22). Working days follow
the State Council's yearly schedule: weekdays that are days off, and Saturdays
and Sundays that become adjusted working days. The schedule for a year is only
published late in the year before.

Where an answer comes from, for the year of the day asked about:
  1. A schedule file (TOML, see ``docs/calendar.md``) for that year. It wins
     over the package, so an operator can load a newly published or corrected
     schedule without upgrading anything.
  2. The data of the ``chinese_calendar`` package, for each year it holds.
  3. Otherwise a PROVISIONAL answer: Saturdays and Sundays are off, and so are
     the fixed-date statutory holidays 1 January, 1 May and 1-3 October.

Invariants:
  - Every answer is an ``Answer`` that carries ``provisional``; no function
    returns a bare value a caller could take for a certain one.
  - A schedule file is taken whole or not at all. Any defect refuses the whole
    load with a ``ScheduleError`` naming the file and the line to fix.
  - Two schedule files for one year are refused: there is no silent choice.
  - Days are local calendar dates (Asia/Shanghai). A ``datetime`` is refused,
    so a UTC instant is never quietly taken for a local date.

Threats and failures answered:
  - A schedule that is late or missing: provisional answers keep deadlines
    computed and visibly flagged. Refusing would stop payments; guessing
    silently would misstate deadlines.
  - A mistyped schedule file (an impossible date, a holiday on a weekend, a
    weekday listed as an adjusted working day): refused at load, because a
    wrong calendar moves every deadline without anyone noticing.
  - Schedule files are trusted configuration: whoever can write one can move
    every deadline. They belong with the gateway's configuration, writable by
    operators only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import itertools
import logging
import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

# The package ships no type information; its data are plain dicts of dates.
import chinese_calendar  # type: ignore[import-untyped]

_logger = logging.getLogger(__name__)

T = TypeVar("T")

ONE_DAY = dt.timedelta(days=1)
SATURDAY = 5

# Days off in a year no schedule covers: the statutory holidays whose date is
# fixed in the Gregorian calendar. The lunar ones (Spring Festival, Qingming,
# Dragon Boat, Mid-Autumn) and the State Council's bridging days are unknown
# until the schedule is published.
# TODO: the national holiday measures as amended in November 2024 (in force
# from 2025) also fix 2 May as a day off. This set follows the rule as
# specified for the gateway (1 January, 1 May, 1-3 October); adding (5, 2)
# would make provisional May deadlines one day later and closer to the real
# ones, once the rule's owner confirms it.
PROVISIONAL_HOLIDAYS: frozenset[tuple[int, int]] = frozenset(
    {(1, 1), (5, 1), (10, 1), (10, 2), (10, 3)}
)

SCHEDULE_KEYS = ("year", "source", "holidays", "working_weekends")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column \d+|end of document)\)$")


class ScheduleError(ValueError):
    """A schedule file cannot be used. The message names the file and line."""

    def __init__(self, path: Path, line: int | None, problem: str) -> None:
        where = f"{path}, line {line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem


@dataclass(frozen=True)
class Answer(Generic[T]):
    """A calendar answer; ``provisional`` is true if it judged an uncovered year."""

    value: T
    provisional: bool


@dataclass(frozen=True)
class YearSchedule:
    """One year of the State Council schedule.

    ``holidays`` are the weekdays that are days off; ``adjusted_working_days``
    are the Saturdays and Sundays that are working days (the file key for
    them is ``working_weekends``).
    """

    year: int
    source: str
    holidays: frozenset[dt.date]
    adjusted_working_days: frozenset[dt.date]

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.adjusted_working_days:
            return True
        return day.weekday() < SATURDAY and day not in self.holidays


class WorkingCalendar:
    """Working days from schedule files, the package, or provisional rules."""

    def __init__(self, schedules: Mapping[int, YearSchedule]) -> None:
        self._schedules = dict(schedules)
        self._warned_years: set[int] = set()

    @classmethod
    def load(cls, schedule_files: Sequence[Path] = ()) -> WorkingCalendar:
        """The package's years, overridden year by year by ``schedule_files``."""
        from_files: dict[int, tuple[YearSchedule, Path]] = {}
        for path in schedule_files:
            schedule, year_line = _read_schedule_file(path)
            if schedule.year in from_files:
                first = from_files[schedule.year][1]
                raise ScheduleError(
                    path,
                    year_line,
                    f"year {schedule.year} is already given by {first}",
                )
            from_files[schedule.year] = (schedule, path)

        schedules = dict(_package_schedules())
        schedules.update({year: s for year, (s, _) in from_files.items()})
        return cls(schedules)

    def covers(self, year: int) -> bool:
        return year in self._schedules

    def coverage(self) -> dict[int, str]:
        """Each covered year, in order, with the source of its schedule."""
        return {year: self._schedules[year].source for year in sorted(self._schedules)}

    def is_working_day(self, day: dt.date) -> Answer[bool]:
        _require_local_date(day)

        schedule = self._schedules.get(day.year)
        if schedule is not None:
            return Answer(schedule.is_working_day(day), provisional=False)

        if day.year not in self._warned_years:
            self._warned_years.add(day.year)
            _logger.warning(
                "no working-day schedule for this year; answers are provisional",
                extra={"year": day.year},
            )
        return Answer(_provisional_is_working_day(day), provisional=True)

    def add_working_days(self, day: dt.date, n: int) -> Answer[dt.date]:
        """The ``n``-th working day strictly after ``day`` (``n`` >= 1).

        Provisional if any day judged on the way lies in an uncovered year.
        """
        _require_local_date(day)
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")

        current, found, provisional = day, 0, False
        while found < n:
            current += ONE_DAY
            answer = self.is_working_day(current)
            provisional = provisional or answer.provisional
            if answer.value:
                found += 1
        return Answer(current, provisional)


def _require_local_date(day: dt.date) -> None:
    if isinstance(day, dt.datetime):
        raise TypeError(
            "give a local calendar date, not a datetime: convert the instant "
            "to Asia/Shanghai and take its date first"
        )


def _provisional_is_working_day(day: dt.date) -> bool:
    if day.weekday() >= SATURDAY:
        return False
    return (day.month, day.day) not in PROVISIONAL_HOLIDAYS


@functools.cache
def _package_schedules() -> Mapping[int, YearSchedule]:
    """The package's data, one schedule per year it holds any data for.

    A year inside the package's range but without a single entry is left
    uncovered rather than read as "no holidays at all".
    """
    source = f"chinese_calendar {chinese_calendar.__version__} package data"
    days_off: dict[int, set[dt.date]] = {}
    adjusted: dict[int, set[dt.date]] = {}
    for day in chinese_calendar.holidays:
        days_off.setdefault(day.year, set())
        if day.weekday() < SATURDAY:
            days_off[day.year].add(day)
    for day in chinese_calendar.workdays:
        if day.weekday() >= SATURDAY:
            adjusted.setdefault(day.year, set()).add(day)

    return {
        year: YearSchedule(
            year=year,
            source=source,
            holidays=frozenset(days_off[year]),
            adjusted_working_days=frozenset(adjusted.get(year, ())),
        )
        for year in sorted(days_off)
    }


# --- schedule files ---------------------------------------------------------


def _read_schedule_file(path: Path) -> tuple[YearSchedule, int]:
    """The file's schedule and the line of its ``year``; refuses any defect."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScheduleError(path, None, f"cannot read it ({exc.strerror})") from exc

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ScheduleError(path, line, "not UTF-8 text") from exc

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.search(message)
        line = len(text.splitlines()) or 1
        if position and position.group(1):
            line = int(position.group(1))
        reason = message[: position.start()] if position else message
        raise ScheduleError(path, line, f"not valid TOML: {reason}") from exc

    reader = _ScheduleReader(path, text, data)
    return reader.schedule(), reader.line_of("year")


class _ScheduleReader:
    """Checks one parsed schedule file, pointing each error at its line."""

    def __init__(self, path: Path, text: str, data: dict[str, Any]) -> None:
        self.path = path
        self.text = text
        self.data = data

    def schedule(self) -> YearSchedule:
        unknown = sorted(set(self.data) - set(SCHEDULE_KEYS))
        if unknown:
            raise self.error(
                unknown[0],
                None,
                f"unknown key {unknown[0]!r}; expected {', '.join(SCHEDULE_KEYS)}",
            )
        for key in SCHEDULE_KEYS:
            if key not in self.data:
                end = len(self.text.splitlines()) or 1
                raise ScheduleError(self.path, end, f"missing key {key!r}")

        year = self.data["year"]
        if type(year) is not int or not dt.MINYEAR <= year <= dt.MAXYEAR:
            raise self.error("year", None, "year must be a whole number like 2027")
        source = self.data["source"]
        if not isinstance(source, str) or not source.strip():
            raise self.error("source", None, "source must name the notice it copies")

        holidays = self.dates("holidays", year)
        for day in holidays:
            if day.weekday() >= SATURDAY:
                raise self.error(
                    "holidays",
                    day,
                    f"{day} is a {day:%A}; list only days off that fall on weekdays",
                )
        adjusted = self.dates("working_weekends", year)
        for day in adjusted:
            if day.weekday() < SATURDAY:
                raise self.error(
                    "working_weekends",
                    day,
                    f"{day} is a {day:%A}; an adjusted working day must be a "
                    "Saturday or a Sunday",
                )

        return YearSchedule(
            year=year,
            source=f"{source.strip()} ({self.path})",
            holidays=frozenset(holidays),
            adjusted_working_days=frozenset(adjusted),
        )

    def dates(self, key: str, year: int) -> list[dt.date]:
        values = self.data[key]
        if not isinstance(values, list):
            raise self.error(key, None, f"{key} must be a list of quoted dates")

        days: list[dt.date] = []
        for value in values:
            if not isinstance(value, str):
                raise self.error(
                    key, None, f"{key} holds {value!r}; write each date quoted"
                )
            day = _parse_iso_date(value)
            if day is None:
                raise self.error(key, value, f"{value!r} is not a date YYYY-MM-DD")
            if day.year != year:
                raise self.error(key, value, f"{value} lies outside year {year}")
            if day in days:
                raise self.error(
                    key, value, f"{value} is listed twice in {key}", occurrence=2
                )
            days.append(day)
        return days

    def error(
        self,
        key: str,
        value: dt.date | str | None,
        problem: str,
        occurrence: int = 1,
    ) -> ScheduleError:
        return ScheduleError(self.path, self.line_of(key, value, occurrence), problem)

    def line_of(
        self, key: str, value: dt.date | str | None = None, occurrence: int = 1
    ) -> int:
        """The line of ``value`` quoted after ``key =``, else of the key, else 1."""
        key_match = re.search(
            rf"^[ \t]*[\"']?{re.escape(key)}[\"']?[ \t]*=", self.text, re.MULTILINE
        )
        if key_match is None:
            return 1
        start = key_match.start()

        if value is not None:
            quoted = re.compile(rf"([\"']){re.escape(str(value))}\1")
            found = list(
                itertools.islice(quoted.finditer(self.text, start), occurrence)
            )
            if len(found) == occurrence:
                start = found[-1].start()
        return self.text.count("\n", 0, start) + 1


def _parse_iso_date(value: str) -> dt.date | None:
    """A date written exactly YYYY-MM-DD, or None.

    ``date.fromisoformat`` alone also takes forms like ``20270101`` and week
    dates; the schedule format admits one spelling only.
    """
    if not _ISO_DATE.fullmatch(value):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


# --- command line -------------------------------------------------------------


def add_calendar_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add ``ykt calendar add-working-days`` and ``ykt calendar coverage``."""
    calendar = subparsers.add_parser(
        "calendar", help="working days: deadlines' arithmetic and schedule coverage"
    )
    calendar_commands = calendar.add_subparsers(dest="calendar_command", required=True)

    add = calendar_commands.add_parser(
        "add-working-days", help="the N-th working day strictly after DATE"
    )
    add.add_argument("date", metavar="DATE", type=_date_argument, help="YYYY-MM-DD")
    add.add_argument("n", metavar="N", type=_positive_int_argument)
    _add_schedule_option(add)
    add.set_defaults(func=_add_working_days_command)

    coverage = calendar_commands.add_parser(
        "coverage", help="the years with a known schedule, and where it comes from"
    )
    _add_schedule_option(coverage)
    coverage.set_defaults(func=_coverage_command)


def _add_schedule_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schedule",
        metavar="FILE",
        type=Path,
        nargs="+",
        action="extend",
        default=[],
        help="a year's schedule (TOML); overrides the package for that year",
    )


def _add_working_days_command(args: argparse.Namespace) -> int:
    calendar = _calendar_or_none(args.schedule)
    if calendar is None:
        return 2
    answer = calendar.add_working_days(args.date, args.n)
    suffix = " provisional" if answer.provisional else ""
    print(f"{answer.value.isoformat()}{suffix}")
    return 0


def _coverage_command(args: argparse.Namespace) -> int:
    calendar = _calendar_or_none(args.schedule)
    if calendar is None:
        return 2
    for year, source in calendar.coverage().items():
        print(f"{year} {source}")
    return 0


def _calendar_or_none(schedule_files: list[Path]) -> WorkingCalendar | None:
    """The calendar, or None after saying on one line why a file is refused."""
    try:
        return WorkingCalendar.load(schedule_files)
    except ScheduleError as exc:
        message = " ".join(str(exc).splitlines())
        print(f"ykt calendar: error: {message}", file=sys.stderr)
        return None


def _date_argument(value: str) -> dt.date:
    day = _parse_iso_date(value)
    if day is None:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date YYYY-MM-DD")
    return day


def _positive_int_argument(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number >= 1")
    return number
